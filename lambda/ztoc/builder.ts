// Builds a zTOC from a layer read once as a stream: detects the compression, runs the tar reader over the
// uncompressed bytes while the gzip indexer (or the fixed-span tar path) records checkpoints and span
// digests, then serializes exactly as soci-snapshotter does.
import { createHash } from 'node:crypto';
import { encodeTarZinfo, gzipCheckpointParts, parseZtoc, serializeZtoc, type ZtocToSerialize } from './codec.ts';
import { TocOffload } from './toc-offload.ts';
import { type GzipIndexOptions, indexGzip } from './gzip-index.ts';
import { GoTarReader, type GoTarReaderOptions } from './tar-reader.ts';
import { limitsWith, tocBytesAllowed, type ZtocLimits } from './limits.ts';
import type { TocEntries } from './toc-table.ts';
import { type CompressionAlgorithm, DEFAULT_BUILD_TOOL_ID, DEFAULT_SPAN_SIZE, type Ztoc, ZTOC_VERSION, ZtocError } from './types.ts';

export { DEFAULT_BUILD_TOOL_ID };

export type CompressionChoice = 'auto' | CompressionAlgorithm;

const TOC_WORKER_MIN_SIZE = 16 << 20;

export interface BuildZtocOptions {
  /** @default 4194304 */
  spanSize?: number;
  /** `auto` recognises gzip by its magic bytes and treats everything else as a tar. @default 'auto' */
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

/** What the first bytes of a layer say it is. */
export type DetectedFormat = 'gzip' | 'zstd' | 'bzip2' | 'xz' | 'tar-or-unknown';

export function detectFormat(head: Uint8Array): DetectedFormat {
  const starts = (...sig: number[]) => sig.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b)) return 'gzip';
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  if (starts(0x42, 0x5a, 0x68)) return 'bzip2';
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  return 'tar-or-unknown';
}

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

interface Serialized {
  bytes: Uint8Array;
  /** The model, when it was built on this thread. */
  ztoc?: () => Ztoc;
  toc?: TocEntries;
  compression: CompressionAlgorithm;
  entries: number;
  spans: number;
  compressedSize: number;
  uncompressedSize: number;
}

function serializedFrom(ztoc: ZtocToSerialize): Serialized {
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

async function buildSerialized(source: AsyncIterable<Uint8Array>, options: BuildZtocOptions): Promise<Serialized> {
  const spanSize = options.spanSize ?? DEFAULT_SPAN_SIZE;
  if (!Number.isSafeInteger(spanSize) || spanSize <= 0) {
    throw new ZtocError('limit-exceeded', `span size must be a positive integer, got ${spanSize}`);
  }
  const { head, stream, close, bytesRead } = await peek(source, 6, options.onProgress);
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
  const compression = chooseCompression(detectFormat(head), options.compression);
  const common = {
    version: ZTOC_VERSION,
    buildToolIdentifier: options.buildToolId ?? DEFAULT_BUILD_TOOL_ID,
    compressionAlgorithm: compression,
  };
  const limits = limitsWith(options.limits);
  const tarOptions = { maxPaxRecords: limits.paxRecordsPerEntry, tocBytesAllowed: () => tocBytesAllowed(limits, bytesRead()) };
  return compression === 'gzip'
    ? buildGzip(stream, spanSize, common, options, limits, bytesRead, tarOptions)
    : buildUncompressed(stream, spanSize, common, new GoTarReader(tarOptions));
}

function chooseCompression(format: DetectedFormat, choice: CompressionChoice | undefined): CompressionAlgorithm {
  if (choice === undefined || choice === 'auto') {
    if (format === 'zstd' || format === 'bzip2' || format === 'xz') {
      throw new ZtocError('unsupported-compression', `${format} layers cannot be indexed (SOCI supports gzip and uncompressed tar)`);
    }
    return format === 'gzip' ? 'gzip' : 'uncompressed';
  }
  if (choice === 'gzip' && format !== 'gzip') {
    throw new ZtocError('bad-gzip', `not a gzip stream (the first bytes are not 1f 8b; detected ${format})`);
  }
  return choice;
}

type Common = Pick<Ztoc, 'version' | 'buildToolIdentifier' | 'compressionAlgorithm'>;

async function buildGzip(
  stream: AsyncIterable<Uint8Array>,
  spanSize: number,
  common: Common,
  options: BuildZtocOptions,
  limits: ZtocLimits,
  bytesRead: () => number,
  tarOptions: GoTarReaderOptions,
): Promise<Serialized> {
  // The tar reader, CRC checks and serialization run on a second thread when asked and available.
  const useWorker = options.tocWorker === true && (options.sizeHint === undefined || options.sizeHint >= TOC_WORKER_MIN_SIZE);
  const offload = useWorker ? TocOffload.start(limits, bytesRead) : undefined;
  const tar = offload ? undefined : new GoTarReader(tarOptions);
  try {
    const r = await indexGzip(stream, offload ? (chunk) => offload.push(chunk) : (chunk) => tar!.push(chunk), {
      ...options.gzip,
      limits,
      spanSize,
      ...(offload ? { onMemberEnd: (crc: number, end: number) => offload.memberEnd(crc, end) } : {}),
    });
    // The windows go into the FlatBuffer straight from the checkpoints: one copy, no intermediate blob.
    const checkpoints = gzipCheckpointParts(spanSize, r.checkpoints);
    const rest = { ...common, compressedArchiveSize: r.compressedSize, maxSpanId: r.spanDigests.length - 1, spanDigests: r.spanDigests, checkpoints };
    if (!offload) {
      tar!.end();
      return serializedFrom({ ...rest, toc: tar!.toc, uncompressedArchiveSize: tar!.archiveSize });
    }
    const done = await offload.finish(rest); // transfers the parts to the worker
    return {
      bytes: done.bytes,
      compression: 'gzip',
      entries: done.entries,
      spans: rest.maxSpanId + 1,
      compressedSize: r.compressedSize,
      uncompressedSize: done.uncompressedArchiveSize,
    };
  } finally {
    await offload?.close();
  }
}

/** Uncompressed tar: spans are fixed slices of the file (spec 3.5). */
async function buildUncompressed(stream: AsyncIterable<Uint8Array>, spanSize: number, common: Common, tar: GoTarReader): Promise<Serialized> {
  const spanDigests: string[] = [];
  let hash = createHash('sha256');
  let inSpan = 0;
  let size = 0;
  for await (const chunk of stream) {
    tar.push(chunk);
    size += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const take = Math.min(chunk.length - off, spanSize - inSpan);
      hash.update(chunk.subarray(off, off + take));
      off += take;
      inSpan += take;
      if (inSpan === spanSize) {
        spanDigests.push(`sha256:${hash.digest('hex')}`);
        hash = createHash('sha256');
        inSpan = 0;
      }
    }
  }
  if (inSpan > 0) spanDigests.push(`sha256:${hash.digest('hex')}`);
  tar.end();
  return serializedFrom({
    ...common,
    toc: tar.toc,
    compressedArchiveSize: size,
    uncompressedArchiveSize: tar.archiveSize,
    maxSpanId: spanDigests.length - 1,
    spanDigests,
    checkpoints: encodeTarZinfo(spanSize, size),
  });
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
