// Builds a zTOC from a layer read once as a stream: detects the compression, runs the tar reader over the
// uncompressed bytes while the gzip indexer (or the fixed-span tar path) records checkpoints and span
// digests, then serializes exactly as soci-snapshotter does.
import { createHash } from 'node:crypto';
import { encodeGzipCheckpoints, encodeTarZinfo, serializeZtoc } from './codec.ts';
import { type GzipIndexOptions, indexGzip } from './gzip-index.ts';
import { GoTarReader } from './tar-reader.ts';
import { VERSION } from '../version.ts';
import { type CompressionAlgorithm, DEFAULT_SPAN_SIZE, type Ztoc, ZTOC_VERSION, ZtocError } from './types.ts';

export const DEFAULT_BUILD_TOOL_ID = `soci-indexer ${VERSION}`;

export type CompressionChoice = 'auto' | CompressionAlgorithm;

export interface BuildZtocOptions {
  /** @default 4194304 */
  spanSize?: number;
  /** `auto` recognises gzip by its magic bytes and treats everything else as a tar. @default 'auto' */
  compression?: CompressionChoice;
  /** @default DEFAULT_BUILD_TOOL_ID */
  buildToolId?: string;
  /** Called as compressed bytes are consumed. */
  onProgress?: (bytesRead: number) => void;
  /** Internal tuning of the gzip indexer (tests only). */
  gzip?: Omit<GzipIndexOptions, 'spanSize'>;
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
  | { indexable: true; ztoc: Ztoc; bytes: Uint8Array; summary: ZtocSummary }
  | { indexable: false; code: ZtocError['code']; reason: string };

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
    const ztoc = await buildZtocModel(source, options);
    const bytes = serializeZtoc(ztoc);
    const summary: ZtocSummary = {
      digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
      size: bytes.length,
      compression: ztoc.compressionAlgorithm,
      spanSize: options.spanSize ?? DEFAULT_SPAN_SIZE,
      entries: ztoc.toc.length,
      spans: ztoc.maxSpanId + 1,
      compressedSize: ztoc.compressedArchiveSize,
      uncompressedSize: ztoc.uncompressedArchiveSize,
      buildToolId: ztoc.buildToolIdentifier,
    };
    return { indexable: true, ztoc, bytes, summary };
  } catch (err) {
    if (err instanceof ZtocError) return { indexable: false, code: err.code, reason: err.message };
    throw err;
  }
}

async function buildZtocModel(source: AsyncIterable<Uint8Array>, options: BuildZtocOptions): Promise<Ztoc> {
  const spanSize = options.spanSize ?? DEFAULT_SPAN_SIZE;
  if (!Number.isSafeInteger(spanSize) || spanSize <= 0) {
    throw new ZtocError('limit-exceeded', `span size must be a positive integer, got ${spanSize}`);
  }
  const { head, stream } = await peek(source, 6, options.onProgress);
  if (head.length === 0) throw new ZtocError('empty', 'the layer is empty (0 bytes)');
  const format = detectFormat(head);
  let compression: CompressionAlgorithm;
  if (options.compression === undefined || options.compression === 'auto') {
    if (format === 'zstd' || format === 'bzip2' || format === 'xz') {
      throw new ZtocError('unsupported-compression', `${format} layers cannot be indexed (SOCI supports gzip and uncompressed tar)`);
    }
    compression = format === 'gzip' ? 'gzip' : 'uncompressed';
  } else {
    compression = options.compression;
    if (compression === 'gzip' && format !== 'gzip') {
      throw new ZtocError('bad-gzip', `not a gzip stream (the first bytes are not 1f 8b; detected ${format})`);
    }
  }
  const tar = new GoTarReader();
  const common = {
    version: ZTOC_VERSION,
    buildToolIdentifier: options.buildToolId ?? DEFAULT_BUILD_TOOL_ID,
    toc: tar.entries,
    compressionAlgorithm: compression,
  };
  if (compression === 'gzip') {
    const r = await indexGzip(stream, (chunk) => tar.push(chunk), { ...options.gzip, spanSize });
    tar.end();
    const checkpoints = encodeGzipCheckpoints(spanSize, r.checkpoints);
    r.checkpoints.length = 0; // the windows now live in the blob only
    return {
      ...common,
      compressedArchiveSize: r.compressedSize,
      uncompressedArchiveSize: tar.archiveSize,
      maxSpanId: r.spanDigests.length - 1,
      spanDigests: r.spanDigests,
      checkpoints,
    };
  }
  // Uncompressed tar: spans are fixed slices of the file (spec 3.5).
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
  return {
    ...common,
    compressedArchiveSize: size,
    uncompressedArchiveSize: tar.archiveSize,
    maxSpanId: spanDigests.length - 1,
    spanDigests,
    checkpoints: encodeTarZinfo(spanSize, size),
  };
}

/** Reads at least `n` bytes (or all, if fewer) and returns them plus a stream that replays everything. */
async function peek(
  source: AsyncIterable<Uint8Array>,
  n: number,
  onProgress: ((bytesRead: number) => void) | undefined,
): Promise<{ head: Uint8Array; stream: AsyncIterable<Uint8Array> }> {
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
    buffered.push(next.value);
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
    try {
      for (const chunk of buffered) yield count(chunk);
      buffered.length = 0;
      if (done) return;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield count(next.value);
      }
    } finally {
      if (!done) await iterator.return?.();
    }
  }
  return { head, stream: replay() };
}
