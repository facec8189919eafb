// What one compression algorithm of the table (table.ts) is: how to recognise it, how to index a stream of
// it, how to read its checkpoints and how to verify a zTOC of it. The soci-snapshotter counterpart is
// `ztoc/compression` (the Zinfo interface) plus `Builder.RegisterCompressionAlgorithm`.
import type { BuildZtocOptions } from '../builder.ts';
import { serializeZtoc, type ZtocToSerialize } from '../codec.ts';
import type { ZtocLimits } from '../limits.ts';
import type { GoTarReaderOptions } from '../tar-reader.ts';
import type { TocEntries } from '../toc-table.ts';
import type { Ztoc, ZtocError } from '../types.ts';
import type { Plan } from '../verify/plan.ts';
import type { LayerSource } from '../verify/types.ts';

export interface Compression {
  /** The zTOC's `compression_algorithm` exactly as upstream writes it (soci's `compression.Gzip`, ...). */
  name: string;
  /** Its value in ztoc.fbs's `CompressionAlgorithm` enum, which is what the zTOC bytes hold. */
  fbsCode: number;
  /** How messages name it ("SOCI supports gzip and uncompressed tar"). */
  description: string;
  /**
   * The layer's first bytes when it is this compression, and the ZtocError code when a layer asked to be
   * read as this compression does not start with them. Absent for the one entry that takes what no magic
   * claims (plain tar, which has no magic at offset 0).
   */
  magic?: { bytes: readonly number[]; mismatch: ZtocError['code'] };
  /** The compressions containerd's `DiffCompression` names for the media types this entry indexes. */
  mediaTypeCompressions: readonly string[];
  /** Indexes the layer stream: TOC, checkpoints and span digests, serialized. */
  build(stream: AsyncIterable<Uint8Array>, context: BuildContext): Promise<Serialized>;
  /** The span size recorded in this algorithm's checkpoint blob. */
  spanSize(checkpoints: Uint8Array): number;
  /** The span holding an uncompressed offset, for a zTOC this tool built. */
  spanLocator(checkpoints: Uint8Array): (uncompressedOffset: number) => number;
  /** The checkpoint blob decoded for people and JSON (`ztoc info`). */
  describeCheckpoints(checkpoints: Uint8Array): { spanSize: number } & Record<string, unknown>;
  /** How `ztoc verify` checks a zTOC of this algorithm against its layer. */
  verify: VerifyMethod;
}

export interface VerifyMethod {
  /** The span ranges and the file extractions (ranged read + decompression from a checkpoint) the zTOC implies. */
  plan(ztoc: Ztoc, problems: string[]): Plan | null;
  /** Checks the layer bytes before the first span (`plan.prefixEnd` of them), e.g. the gzip header. */
  checkPrefix?(prefix: Uint8Array, plan: Plan, problems: string[]): void;
  /**
   * Decompresses the whole layer, independently of the checkpoints, for the tar walk (a second pass).
   * Absent when the layer blob is itself the tar stream (walked in the first pass).
   */
  decompress?(layer: LayerSource, problems: string[], sink: (pos: number, chunk: Uint8Array) => void): Promise<void>;
}

export type BuildHeader = Pick<Ztoc, 'version' | 'buildToolIdentifier' | 'compressionAlgorithm'>;

export interface BuildContext {
  spanSize: number;
  header: BuildHeader;
  options: BuildZtocOptions;
  limits: ZtocLimits;
  /** Compressed bytes read from the source so far. */
  bytesRead: () => number;
  tarOptions: GoTarReaderOptions;
}

/** A built zTOC: its bytes and what the summary reports. */
export interface Serialized {
  bytes: Uint8Array;
  /** The model, when it was built on this thread. */
  ztoc?: () => Ztoc;
  toc?: TocEntries;
  compression: string;
  entries: number;
  spans: number;
  compressedSize: number;
  uncompressedSize: number;
}

export function serializedFrom(ztoc: ZtocToSerialize): Serialized {
  const { checkpoints, toc } = ztoc;
  return {
    bytes: serializeZtoc(ztoc),
    ztoc: () => ({
      ...ztoc,
      toc: Array.isArray(toc) ? toc : Array.from({ length: toc.length }, (_, i) => toc.at(i)!),
      checkpoints: checkpoints instanceof Uint8Array ? checkpoints : Buffer.concat(checkpoints),
    }),
    toc,
    compression: ztoc.compressionAlgorithm,
    entries: ztoc.toc.length,
    spans: ztoc.maxSpanId + 1,
    compressedSize: ztoc.compressedArchiveSize,
    uncompressedSize: ztoc.uncompressedArchiveSize,
  };
}
