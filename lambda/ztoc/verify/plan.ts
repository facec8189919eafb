// What to check: the span ranges and the file extractions a zTOC implies.
import { decodeGzipCheckpoints, decodeTarZinfo } from '../codec.ts';
import type { Checkpoint, Ztoc } from '../types.ts';
import { WINDOW_SIZE, ZtocError } from '../types.ts';
import { CheckpointExtraction, type FileRange } from './extraction.ts';
import { MAX_GZIP_HEADER } from './gzip.ts';
import type { ByteRange, RangeHasher } from './range-hasher.ts';

export const utf8 = new TextDecoder();

/** A name for a problem line: decoded leniently and escaped so it stays on one line. */
export function display(name: Uint8Array): string {
  return JSON.stringify(utf8.decode(name)).slice(1, -1);
}

export function message(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

/** The largest i with points[i] <= value (points ascending), or -1. */
export function lastAtOrBelow(points: number[], value: number): number {
  let lo = 0;
  let hi = points.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid]! <= value) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/** Files extracted from one checkpoint: fed the layer blob from `startByte` on, hashes what it decompresses. */
export interface Extraction {
  readonly startByte: number;
  readonly files: FileRange[];
  readonly hasher: RangeHasher;
  /** Set once every file is hashed (or the extraction failed). */
  readonly done: boolean;
  /** `chunk` holds the layer bytes [chunkPos, chunkPos + chunk.length). */
  feed(chunk: Uint8Array, chunkPos: number): void;
  /** Why files are missing when the layer ended first. */
  unfinishedReason(): string;
}

export interface Plan {
  spanRanges: ByteRange[];
  /** The layer bytes before the first span, kept for the compression's `checkPrefix` (gzip: its header). */
  prefixEnd: number;
  /** Extractions from checkpoints (gzip), by ascending start byte. */
  extractions: Extraction[];
  /** uncompressed only: file slices of the layer itself. */
  slices: FileRange[];
  /** gzip only: 32 KiB before each checkpoint's `out` in the uncompressed stream. */
  windowRanges: ByteRange[];
  checkpoints: Checkpoint[];
  /** Where each extracted file came from, for problem lines. */
  sourceOf: Map<number, string>;
}

export function planGzip(ztoc: Ztoc, problems: string[]): Plan | null {
  let checkpoints: Checkpoint[];
  try {
    checkpoints = decodeGzipCheckpoints(ztoc.checkpoints).checkpoints;
  } catch (err) {
    problems.push(`checkpoints: ${err instanceof ZtocError ? err.message : message(err)}`);
    return null;
  }
  if (checkpoints.length === 0) {
    problems.push('checkpoints: the blob holds no checkpoint');
    return null;
  }
  if (ztoc.maxSpanId !== checkpoints.length - 1) {
    problems.push(`max_span_id ${ztoc.maxSpanId} but there are ${checkpoints.length} checkpoints`);
  }
  let monotonic = true;
  for (let i = 1; i < checkpoints.length; i++) {
    const [a, b] = [checkpoints[i - 1]!, checkpoints[i]!];
    if (!(a.in - (a.bits ? 1 : 0) < b.in && a.out < b.out)) {
      problems.push(`checkpoint ${i} is not after checkpoint ${i - 1} (in ${a.in} -> ${b.in}, out ${a.out} -> ${b.out})`);
      monotonic = false;
    }
  }
  const spanRanges = checkpoints.map((cp, i) => ({
    start: cp.in - (cp.bits ? 1 : 0),
    end: i + 1 < checkpoints.length ? checkpoints[i + 1]!.in : Infinity,
  }));
  const windowRanges = checkpoints.map((cp) => ({
    start: Math.max(0, cp.out - WINDOW_SIZE),
    end: cp.out,
    zeroPrefix: Math.max(0, WINDOW_SIZE - cp.out),
  }));
  const prefixEnd = Math.min(checkpoints[0]!.in, MAX_GZIP_HEADER);
  const plan: Plan = { spanRanges, prefixEnd, extractions: [], slices: [], windowRanges, checkpoints, sourceOf: new Map() };
  if (!monotonic) {
    problems.push('files: not extracted, the checkpoints are out of order');
    return plan;
  }
  const outs = checkpoints.map((cp) => cp.out);
  const bySpan = new Map<number, FileRange[]>();
  ztoc.toc.forEach((m, entry) => {
    if (m.type !== 'reg' || m.uncompressedSize <= 0) return;
    const span = lastAtOrBelow(outs, m.uncompressedOffset);
    if (span < 0) {
      problems.push(`file ${display(m.name)}: offset ${m.uncompressedOffset} lies before checkpoint 0`);
      return;
    }
    const files = bySpan.get(span) ?? [];
    files.push({ entry, start: m.uncompressedOffset, end: m.uncompressedOffset + m.uncompressedSize });
    bySpan.set(span, files);
    plan.sourceOf.set(entry, `checkpoint ${span}`);
  });
  plan.extractions = [...bySpan]
    .map(([span, files]) => new CheckpointExtraction(checkpoints[span]!, files))
    .sort((a, b) => a.startByte - b.startByte);
  return plan;
}

export function planUncompressed(ztoc: Ztoc, problems: string[]): Plan | null {
  let zinfo: { spanSize: number; size: number };
  try {
    zinfo = decodeTarZinfo(ztoc.checkpoints);
  } catch (err) {
    problems.push(`checkpoints: ${err instanceof ZtocError ? err.message : message(err)}`);
    return null;
  }
  if (zinfo.spanSize <= 0) {
    problems.push(`checkpoints: TarZinfo span size ${zinfo.spanSize}`);
    return null;
  }
  if (zinfo.size !== ztoc.compressedArchiveSize) {
    problems.push(`checkpoints: TarZinfo size ${zinfo.size} but compressed_archive_size ${ztoc.compressedArchiveSize}`);
  }
  const spanCount = Math.ceil(zinfo.size / zinfo.spanSize);
  if (ztoc.maxSpanId !== spanCount - 1) {
    problems.push(`max_span_id ${ztoc.maxSpanId} but a ${zinfo.size}-byte layer at span size ${zinfo.spanSize} has ${spanCount} spans`);
  }
  const spanRanges = Array.from({ length: spanCount }, (_, i) => ({
    start: i * zinfo.spanSize,
    end: i + 1 < spanCount ? (i + 1) * zinfo.spanSize : Infinity,
  }));
  const plan: Plan = { spanRanges, prefixEnd: 0, extractions: [], slices: [], windowRanges: [], checkpoints: [], sourceOf: new Map() };
  ztoc.toc.forEach((m, entry) => {
    if (m.type !== 'reg' || m.uncompressedSize <= 0) return;
    plan.slices.push({ entry, start: m.uncompressedOffset, end: m.uncompressedOffset + m.uncompressedSize });
    plan.sourceOf.set(entry, `span ${Math.floor(m.uncompressedOffset / zinfo.spanSize)}`);
  });
  return plan;
}
