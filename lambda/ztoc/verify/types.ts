// The verifier's public types.

export interface VerifyReport {
  /** Spans whose digest was recomputed and compared. */
  spans: number;
  /** Regular files (size > 0) extracted via their checkpoint and compared with the tar. */
  filesChecked: number;
  /** One line per problem; the zTOC is OK when this is empty. */
  problems: string[];
}

export type LayerSource = () => AsyncIterable<Uint8Array>;
