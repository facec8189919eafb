// The engine's documented limits (README "Limits", docs/design.md). They keep a build's memory bounded by
// its configuration plus the zTOC being built, and refuse layers whose zTOC would be out of proportion to
// the layer. Every limit is far above what real layers reach (the reasoning is in docs/design.md); hitting
// one is a ZtocError with the stable code `limit-exceeded`.

export interface ZtocLimits {
  /**
   * Checkpoints allowed beyond one per span of uncompressed output. Only checkpoints at output 0 do not
   * need a span of output (an empty first gzip member, a flush before any data): real layers have 1–3.
   */
  extraCheckpoints: number;
  /** Largest gzip member header (FEXTRA + FNAME + FCOMMENT), as `ztoc verify` caps it. */
  gzipHeaderBytes: number;
  /** PAX records in one entry's extended header (a Linux file cannot carry more than ~9,400 xattrs). */
  paxRecordsPerEntry: number;
  /** TOC metadata (the zTOC's TOC as serialized, estimated) allowed whatever the layer's size. */
  tocBytesBase: number;
  /** ... plus this many TOC bytes per compressed byte of the layer read so far. */
  tocBytesPerLayerByte: number;
  /**
   * Output of one deflate block kept in memory before the block is followed in software instead (real
   * deflaters end blocks after at most ~17 MiB of output).
   */
  blockOutputRetained: number;
}

export const DEFAULT_LIMITS: Readonly<ZtocLimits> = Object.freeze({
  extraCheckpoints: 64,
  gzipHeaderBytes: 1 << 20,
  paxRecordsPerEntry: 10_000,
  tocBytesBase: 64 << 20,
  tocBytesPerLayerByte: 32,
  blockOutputRetained: 16 << 20,
});

export function limitsWith(overrides: Partial<ZtocLimits> | undefined): ZtocLimits {
  return { ...DEFAULT_LIMITS, ...overrides };
}

/** TOC bytes allowed after `layerBytes` compressed bytes of the layer have been read. */
export function tocBytesAllowed(limits: ZtocLimits, layerBytes: number): number {
  return limits.tocBytesBase + limits.tocBytesPerLayerByte * layerBytes;
}
