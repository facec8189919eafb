// Builds a zTOC from a layer read once as a stream: the compression table picks the algorithm (by its
// magic bytes, or as asked), whose builder runs the tar reader over the uncompressed bytes while it records
// checkpoints and span digests; the result is serialized exactly as soci-snapshotter does.
import { createHash } from 'node:crypto';
import { parseZtoc } from './codec.ts';
import type { Serialized } from './compression/algorithm.ts';
import { chooseCompression, magicLength } from './compression/table.ts';
import type { GzipIndexOptions } from './gzip-index.ts';
import { limitsWith, tocBytesAllowed, type ZtocLimits } from './limits.ts';
import type { TocEntries } from './toc-table.ts';
import { type CompressionAlgorithm, DEFAULT_BUILD_TOOL_ID, DEFAULT_SPAN_SIZE, ZTOC_VERSION, type Ztoc, ZtocError } from './types.ts';

export { detectFormat } from './compression/table.ts';
export { DEFAULT_BUILD_TOOL_ID };

/** `auto`, or a name in the compression table. */
export type CompressionChoice = 'auto' | CompressionAlgorithm;

export interface BuildZtocOptions {
  /** @default 4194304 */
  spanSize?: number;
  /** `auto` recognises an algorithm by its magic bytes (gzip: 1f 8b) and treats everything else as a tar. @default 'auto' */
  compression?: CompressionChoice;
  /** @default DEFAULT_BUILD_TOOL_ID */
  buildToolId?: string;
  /** Called as compressed bytes are consumed. */
  onProgress?: (bytesRead: number) => void;
  /**
   * Parse the tar stream, check CRCs and serialize on a second thread (a TOC worker) instead of the
   * inflating one, for layers of at least 16 MiB when `sizeHint` says so. Measured on a 240 MB layer:
   * 1.23x instead of 1.5x the time of createGunzip, for a few MB more RSS (docs/benchmarks.md). Worth it
   * when one layer is all there is to do (`ztoc build`); an image build already runs one layer per core.
   * @default false
   */
  tocWorker?: boolean;
  /** The layer's size in bytes, when known. */
  sizeHint?: number;
  /** The engine's limits (README "Limits"); tests lower them. @default DEFAULT_LIMITS */
  limits?: Partial<ZtocLimits>;
  /** Internal tuning of the gzip indexer (tests only). */
  gzip?: Omit<GzipIndexOptions, 'spanSize' | 'limits'>;
}

export interface ZtocSummary {
  /** sha256 of the serialized zTOC. */
  digest: string;
  size: number;
  compression: CompressionAlgorithm;
  spanSize: number;
  entries: number;
  spans: number;
  compressedSize: number;
  uncompressedSize: number;
  buildToolId: string;
}

export type ZtocBuildOutcome =
  | {
      indexable: true;
      /** The whole model, materialized on first access. */
      ztoc: Ztoc;
      /** The TOC alone: the builder's compact table when it was built on this thread (no copy). */
      toc: TocEntries;
      bytes: Uint8Array;
      summary: ZtocSummary;
    }
  /** `limit`: for `limit-exceeded`, the limit that was hit (README "Limits"). */
  | { indexable: false; code: ZtocError['code']; reason: string; limit?: string };

/** What the first bytes of a layer say it is: a table entry's name, `zstd`, `bzip2`, `xz` or `tar-or-unknown`. */
export type DetectedFormat = string;

/** Builds the zTOC of a layer; bad or unsupported input gives `indexable: false`, I/O errors throw. */
export async function buildZtoc(source: AsyncIterable<Uint8Array>, options: BuildZtocOptions = {}): Promise<ZtocBuildOutcome> {
  try {
    const built = await buildSerialized(source, options);
    const summary: ZtocSummary = {
      digest: `sha256:${createHash('sha256').update(built.bytes).digest('hex')}`,
      size: built.bytes.length,
      compression: built.compression,
      spanSize: options.spanSize ?? DEFAULT_SPAN_SIZE,
      entries: built.entries,
      spans: built.spans,
      compressedSize: built.compressedSize,
      uncompressedSize: built.uncompressedSize,
      buildToolId: options.buildToolId ?? DEFAULT_BUILD_TOOL_ID,
    };
    let ztoc: Ztoc | undefined;
    const model = () => (ztoc ??= built.ztoc?.() ?? parseZtoc(built.bytes));
    return {
      indexable: true,
      bytes: built.bytes,
      summary,
      // Built on the TOC worker, the model exists only as bytes: parse it when someone asks.
      get ztoc() {
        return model();
      },
      get toc() {
        return built.toc ?? model().toc;
      },
    };
  } catch (err) {
    if (err instanceof ZtocError) return { indexable: false, code: err.code, reason: err.message, ...(err.limit && { limit: err.limit }) };
    throw err;
  }
}

async function buildSerialized(source: AsyncIterable<Uint8Array>, options: BuildZtocOptions): Promise<Serialized> {
  const spanSize = options.spanSize ?? DEFAULT_SPAN_SIZE;
  if (!Number.isSafeInteger(spanSize) || spanSize <= 0) {
    throw new ZtocError('limit-exceeded', `span size must be a positive integer, got ${spanSize}`);
  }
  const { head, stream, close, bytesRead } = await peek(source, magicLength(), options.onProgress);
  try {
    return await buildFromPeeked(head, stream, spanSize, options, bytesRead);
  } finally {
    await close(); // stopping early (zstd, bad tar, ...) must still release the source's file or socket
  }
}

async function buildFromPeeked(
  head: Uint8Array,
  stream: AsyncIterable<Uint8Array>,
  spanSize: number,
  options: BuildZtocOptions,
  bytesRead: () => number,
): Promise<Serialized> {
  if (head.length === 0) throw new ZtocError('empty', 'the layer is empty (0 bytes)');
  const compression = chooseCompression(head, options.compression);
  const header = {
    version: ZTOC_VERSION,
    buildToolIdentifier: options.buildToolId ?? DEFAULT_BUILD_TOOL_ID,
    compressionAlgorithm: compression.name,
  };
  const limits = limitsWith(options.limits);
  const tarOptions = { maxPaxRecords: limits.paxRecordsPerEntry, tocBytesAllowed: () => tocBytesAllowed(limits, bytesRead()) };
  return compression.build(stream, { spanSize, header, options, limits, bytesRead, tarOptions });
}

/** Reads at least `n` bytes (or all, if fewer) and returns them plus a stream that replays everything. */
async function peek(
  source: AsyncIterable<Uint8Array>,
  n: number,
  onProgress: ((bytesRead: number) => void) | undefined,
): Promise<{ head: Uint8Array; stream: AsyncIterable<Uint8Array>; close: () => Promise<void>; bytesRead: () => number }> {
  const iterator = source[Symbol.asyncIterator]();
  const buffered: Uint8Array[] = [];
  let have = 0;
  let done = false;
  while (have < n) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    // A copy: the source may reuse a chunk's memory once the next one is pulled (the layer worker does).
    buffered.push(Uint8Array.prototype.slice.call(next.value));
    have += next.value.length;
  }
  const head = Buffer.concat(buffered).subarray(0, n);
  let read = 0;
  const count = (chunk: Uint8Array) => {
    read += chunk.length;
    onProgress?.(read);
    return chunk;
  };
  async function* replay(): AsyncGenerator<Uint8Array> {
    for (const chunk of buffered) yield count(chunk);
    buffered.length = 0;
    if (done) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) {
        done = true;
        return;
      }
      yield count(next.value);
    }
  }
  const close = async () => {
    if (!done) {
      done = true;
      await iterator.return?.();
    }
  };
  return { head, stream: replay(), close, bytesRead: () => read };
}
