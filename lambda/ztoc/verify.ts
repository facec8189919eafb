// Consumer-side check of a zTOC against its layer (docs/format.md §3.4, §4.7). Deliberately independent
// of the builder: span digests are recomputed from the checkpoints, every regular file is extracted the
// way the snapshotter does it (raw inflate from its span's checkpoint, here with pako instead of native
// zlib), and the expected entries come from our own minimal tar walk over a plain gunzip of the layer.
// Memory stays bounded: the layer is streamed, never held.

import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import PakoZStream from 'pako/lib/zlib/zstream.js';
import * as pako from 'pako/lib/zlib/inflate.js';
import { decodeGzipCheckpoints, decodeTarZinfo } from './codec.ts';
import { sameBytes } from './toc-table.ts';
import { WINDOW_SIZE, ZtocError } from './types.ts';
import type { Checkpoint, Ztoc } from './types.ts';

export interface VerifyReport {
  /** Spans whose digest was recomputed and compared. */
  spans: number;
  /** Regular files (size > 0) extracted via their checkpoint and compared with the tar. */
  filesChecked: number;
  /** One line per problem; the zTOC is OK when this is empty. */
  problems: string[];
}

export type LayerSource = () => AsyncIterable<Uint8Array>;

// Static imports (typed in pako-zlib.d.ts), so every bundle carries pako: the package does not depend on
// it at run time, and a require() resolved from node_modules would fail where it is installed.
type PakoStream = PakoZStream;
const Z_OK = 0;
const Z_STREAM_END = 1;
const Z_BUF_ERROR = -5;

const GZIP_TRAILER_SIZE = 8;
const MAX_GZIP_HEADER = 1 << 20;
const MAX_TAR_META = 1 << 20; // Go-tar's limit for PAX and GNU long-name bodies
const INFLATE_OUT = 1 << 16;

// ---------------------------------------------------------------------------------------------------
// Hashing of many (possibly overlapping) byte ranges of one stream, fed chunk by chunk.

interface ByteRange {
  start: number;
  /** Infinity = up to the end of the stream. */
  end: number;
  /** Zero bytes hashed before the range (checkpoint windows before 32 KiB of output). */
  zeroPrefix?: number;
}

class RangeHasher {
  readonly digests: (string | null)[];
  private readonly order: number[];
  private nextToOpen = 0;
  private readonly open = new Map<number, Hash>();

  constructor(private readonly ranges: ByteRange[]) {
    this.digests = ranges.map(() => null);
    this.order = ranges
      .map((_, i) => i)
      .filter((i) => ranges[i]!.start >= 0 && ranges[i]!.start <= ranges[i]!.end)
      .sort((a, b) => ranges[a]!.start - ranges[b]!.start);
  }

  /** `chunk` holds the stream bytes [pos, pos + chunk.length). */
  update(pos: number, chunk: Uint8Array): void {
    const chunkEnd = pos + chunk.length;
    while (this.nextToOpen < this.order.length) {
      const i = this.order[this.nextToOpen]!;
      const r = this.ranges[i]!;
      if (r.start > chunkEnd || (r.start === chunkEnd && r.end > r.start)) break;
      this.nextToOpen++;
      if (r.start < pos) continue; // its beginning was never seen: stays null
      const hash = createHash('sha256');
      if (r.zeroPrefix) hash.update(new Uint8Array(r.zeroPrefix));
      this.open.set(i, hash);
    }
    for (const [i, hash] of this.open) {
      const r = this.ranges[i]!;
      const from = Math.max(r.start, pos);
      const to = Math.min(r.end, chunkEnd);
      if (to > from) hash.update(chunk.subarray(from - pos, to - pos));
      if (r.end <= chunkEnd) {
        this.digests[i] = hash.digest('hex');
        this.open.delete(i);
      }
    }
  }

  /** Closes the open-ended ranges; ranges the stream did not reach stay null. */
  finish(): (string | null)[] {
    for (const [i, hash] of this.open) if (this.ranges[i]!.end === Infinity) this.digests[i] = hash.digest('hex');
    this.open.clear();
    return this.digests;
  }
}

// ---------------------------------------------------------------------------------------------------
// gzip framing

/** Length of the gzip member header at the start of `b`, or 0 while `b` ends inside it. */
function gzipHeaderLength(b: Uint8Array): number {
  const expect = (at: number, ok: (v: number) => boolean, what: string) => {
    if (b.length > at && !ok(b[at]!)) throw new Error(what);
  };
  expect(0, (v) => v === 0x1f, 'bad gzip magic');
  expect(1, (v) => v === 0x8b, 'bad gzip magic');
  expect(2, (v) => v === 8, 'gzip method is not deflate');
  expect(3, (v) => (v & 0xe0) === 0, 'reserved gzip flags set');
  if (b.length < 10) return 0;
  const flags = b[3]!;
  let p = 10;
  if (flags & 4) {
    if (b.length < p + 2) return 0;
    p += 2 + (b[p]! | (b[p + 1]! << 8));
  }
  for (const flag of [8, 16]) {
    if (flags & flag) {
      const nul = b.indexOf(0, p);
      if (nul < 0) return 0;
      p = nul + 1;
    }
  }
  if (flags & 2) p += 2;
  return b.length >= p ? p : 0;
}

function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Extraction from a checkpoint: raw inflate primed with the checkpoint's bits and window.

interface FileRange extends ByteRange {
  /** Index of the entry in the zTOC's TOC. */
  entry: number;
}

/** Inflates from one checkpoint until every file starting in its span has been hashed. */
class CheckpointExtraction {
  readonly startByte: number;
  readonly hasher: RangeHasher;
  failure: string | null = null;
  done = false;
  private nextByte: number;
  private mode: 'prime' | 'inflate' | 'trailer' | 'header';
  private strm: PakoStream | null = null;
  private trailerLeft = 0;
  private header: Uint8Array = new Uint8Array(0);
  private outPos: number;
  private readonly outEnd: number;
  private readonly out = new Uint8Array(INFLATE_OUT);

  constructor(
    private readonly cp: Checkpoint,
    readonly files: FileRange[],
  ) {
    this.startByte = cp.bits ? cp.in - 1 : cp.in;
    this.nextByte = this.startByte;
    this.mode = cp.bits ? 'prime' : 'inflate';
    this.outPos = cp.out;
    this.outEnd = files.reduce((end, f) => Math.max(end, f.end), 0);
    this.hasher = new RangeHasher(files);
    if (!cp.bits) this.begin(0);
  }

  /** zran's inflatePrime: the unused high bits of the byte before `in` start the span. */
  private begin(primeByte: number): void {
    const strm = new PakoZStream();
    pako.inflateInit2(strm, -15);
    pako.inflateSetDictionary(strm, this.cp.window);
    strm.state!.hold = primeByte >>> (8 - this.cp.bits);
    strm.state!.bits = this.cp.bits;
    this.strm = strm;
  }

  private fail(reason: string): void {
    this.failure = reason;
    this.done = true;
  }

  feed(chunk: Uint8Array, chunkPos: number): void {
    let off = this.nextByte - chunkPos;
    if (this.done || off < 0 || off >= chunk.length) return;
    while (off < chunk.length && !this.done) {
      if (this.mode === 'prime') {
        this.begin(chunk[off++]!);
        this.mode = 'inflate';
      } else if (this.mode === 'inflate') {
        off = this.inflate(chunk, off);
      } else if (this.mode === 'trailer') {
        const n = Math.min(this.trailerLeft, chunk.length - off);
        this.trailerLeft -= n;
        off += n;
        if (this.trailerLeft === 0) this.mode = 'header';
      } else {
        off = this.readHeader(chunk, off);
      }
    }
    this.nextByte = chunkPos + off;
  }

  private inflate(chunk: Uint8Array, off: number): number {
    const strm = this.strm!;
    strm.input = chunk;
    strm.next_in = off;
    strm.avail_in = chunk.length - off;
    for (;;) {
      const consumedBefore = strm.next_in;
      strm.output = this.out;
      strm.next_out = 0;
      strm.avail_out = this.out.length;
      const ret = pako.inflate(strm, 0);
      const produced = strm.next_out;
      if (produced > 0) this.emit(this.out.subarray(0, produced));
      if (this.done) return chunk.length;
      if (ret === Z_STREAM_END) {
        // Member end: its trailer, then (concatenated members) the next header and a fresh inflater.
        this.mode = 'trailer';
        this.trailerLeft = GZIP_TRAILER_SIZE;
        this.strm = null;
        return strm.next_in;
      }
      if (ret !== Z_OK && ret !== Z_BUF_ERROR) {
        this.fail(`inflate error "${strm.msg}" at uncompressed offset ${this.outPos}`);
        return chunk.length;
      }
      if (strm.avail_out > 0) {
        if (strm.avail_in > 0 && produced === 0 && strm.next_in === consumedBefore) {
          this.fail(`inflate stalled at uncompressed offset ${this.outPos}`);
        }
        return strm.next_in;
      }
    }
  }

  private readHeader(chunk: Uint8Array, off: number): number {
    const before = this.header.length;
    const buf = concatBytes(this.header, chunk.subarray(off, off + MAX_GZIP_HEADER));
    let length: number;
    try {
      length = gzipHeaderLength(buf);
    } catch (err) {
      this.fail(`after a gzip member: ${(err as Error).message}`);
      return chunk.length;
    }
    if (length === 0) {
      if (buf.length > MAX_GZIP_HEADER) this.fail('gzip header too long');
      this.header = buf;
      return chunk.length;
    }
    this.header = new Uint8Array(0);
    const strm = new PakoZStream();
    pako.inflateInit2(strm, -15);
    this.strm = strm;
    this.mode = 'inflate';
    return off + (length - before);
  }

  private emit(bytes: Uint8Array): void {
    this.hasher.update(this.outPos, bytes);
    this.outPos += bytes.length;
    if (this.outPos >= this.outEnd) this.done = true;
  }

  /** Why files are missing when the layer ended first. */
  unfinishedReason(): string {
    return this.failure ?? `the layer ended at uncompressed offset ${this.outPos}`;
  }
}

// ---------------------------------------------------------------------------------------------------
// A minimal tar walk (Go archive/tar semantics for the fields a zTOC records; docs/format.md §2).

interface TarEntry {
  offset: number;
  size: number;
  name: Uint8Array;
  linkname: Uint8Array;
  type: string;
  sha256: string | null;
}

const TYPE_NAMES: Record<string, string> = { '0': 'reg', '1': 'hardlink', '2': 'symlink', '3': 'char', '4': 'block', '5': 'dir', '6': 'fifo' };
const HEADER_ONLY = new Set(['hardlink', 'symlink', 'char', 'block', 'dir', 'fifo']);
const latin1 = new TextDecoder('latin1');

function cString(b: Uint8Array): Uint8Array {
  const nul = b.indexOf(0);
  return nul < 0 ? b : b.subarray(0, nul);
}

/** Go-tar numeric field: base-256 when the high bit is set, else octal with spaces/NULs trimmed. */
function tarNumber(b: Uint8Array): number | null {
  if (b[0]! & 0x80) {
    const invert = b[0]! & 0x40 ? 0xff : 0;
    let x = 0;
    for (let i = 0; i < b.length; i++) {
      x = x * 256 + ((b[i]! ^ invert) & (i === 0 ? 0x7f : 0xff));
      if (x > Number.MAX_SAFE_INTEGER) return null;
    }
    return invert ? -x - 1 : x;
  }
  const text = latin1.decode(b).replace(/^[ \0]+|[ \0]+$/g, '');
  if (!/^[0-7]*$/.test(text)) return null;
  const value = text === '' ? 0 : parseInt(text, 8);
  return Number.isSafeInteger(value) ? value : null;
}

function checksumOk(block: Uint8Array): boolean {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  const stored = tarNumber(block.subarray(148, 156));
  return stored === unsigned || stored === signed;
}

/** PAX records `"<len> <key>=<value>\n"`; keys as latin-1 text, values as bytes. */
function paxRecords(body: Uint8Array): Map<string, Uint8Array> {
  const records = new Map<string, Uint8Array>();
  let p = 0;
  while (p < body.length) {
    const space = body.indexOf(0x20, p);
    const length = space < 0 ? NaN : Number(latin1.decode(body.subarray(p, space)));
    if (!Number.isInteger(length) || length <= space - p || p + length > body.length || body[p + length - 1] !== 0x0a) {
      throw new Error(`bad PAX record at body offset ${p}`);
    }
    const record = body.subarray(space + 1, p + length - 1);
    const eq = record.indexOf(0x3d);
    if (eq < 0) throw new Error(`PAX record without '=' at body offset ${p}`);
    records.set(latin1.decode(record.subarray(0, eq)), record.subarray(eq + 1));
    p += length;
  }
  return records;
}

class TarWalker {
  readonly entries: TarEntry[] = [];
  /** Stream position where Go-tar reports end of archive (uncompressed_archive_size). */
  end: number | null = null;
  error: string | null = null;
  private pos = 0;
  private readonly block = new Uint8Array(512);
  private blockFill = 0;
  private zeroBlocks = 0;
  private dataLeft = 0;
  private padLeft = 0;
  private dataHash: Hash | null = null;
  private dataEntry: TarEntry | null = null;
  private meta: { type: string; parts: Uint8Array[] } | null = null;
  private pax = new Map<string, Uint8Array>();
  private longName: Uint8Array | null = null;
  private longLink: Uint8Array | null = null;

  push(chunk: Uint8Array): void {
    let off = 0;
    while (off < chunk.length && this.end === null && this.error === null) {
      const avail = chunk.length - off;
      if (this.dataLeft > 0) {
        const n = Math.min(this.dataLeft, avail);
        const piece = chunk.subarray(off, off + n);
        this.dataHash?.update(piece);
        this.meta?.parts.push(new Uint8Array(piece)); // chunks may be reused by the caller
        this.dataLeft -= n;
        off += n;
        this.pos += n;
        if (this.dataLeft === 0) this.endOfData();
      } else if (this.padLeft > 0) {
        const n = Math.min(this.padLeft, avail);
        this.padLeft -= n;
        off += n;
        this.pos += n;
      } else {
        const n = Math.min(512 - this.blockFill, avail);
        this.block.set(chunk.subarray(off, off + n), this.blockFill);
        this.blockFill += n;
        off += n;
        this.pos += n;
        if (this.blockFill === 512) {
          this.blockFill = 0;
          this.header();
        }
      }
    }
  }

  finish(): void {
    if (this.end !== null || this.error !== null) return;
    if (this.dataLeft > 0 || this.padLeft > 0 || this.blockFill > 0) this.error = `tar stream truncated at offset ${this.pos}`;
    else this.end = this.pos; // EOF on a header boundary (or after a single zero block)
  }

  private startData(length: number): void {
    this.dataLeft = length;
    this.padLeft = (512 - (length % 512)) % 512;
    if (length === 0) this.endOfData();
  }

  private endOfData(): void {
    if (this.dataEntry && this.dataHash) this.dataEntry.sha256 = this.dataHash.digest('hex');
    this.dataEntry = null;
    this.dataHash = null;
    const meta = this.meta;
    this.meta = null;
    if (!meta) return;
    const body = Buffer.concat(meta.parts);
    if (meta.type === 'x') {
      try {
        this.pax = paxRecords(body);
      } catch (err) {
        this.error = `${(err as Error).message} of the PAX header before offset ${this.pos}`;
      }
    } else if (meta.type === 'L') this.longName = cString(body);
    else this.longLink = cString(body);
  }

  private header(): void {
    const b = this.block;
    const at = this.pos - 512;
    if (b.every((v) => v === 0)) {
      if (++this.zeroBlocks === 2) this.end = this.pos;
      return;
    }
    const flag = String.fromCharCode(b[156]!);
    const headerSize = tarNumber(b.subarray(124, 136));
    const isMeta = flag === 'x' || flag === 'L' || flag === 'K';
    if (this.zeroBlocks > 0) this.stop(`non-zero block after an end-of-archive block at offset ${at}`);
    else if (!checksumOk(b)) this.stop(`bad tar header checksum at offset ${at}`);
    else if (headerSize === null || headerSize < 0) this.stop(`bad size field in the tar header at offset ${at}`);
    else if (isMeta && headerSize > MAX_TAR_META) this.stop(`'${flag}' header body too large at offset ${at}`);
    if (this.error !== null || headerSize === null) return;
    if (isMeta) {
      this.meta = { type: flag, parts: [] };
      return this.startData(headerSize);
    }
    const entry = this.entryFromHeader(b, flag, headerSize, at);
    if (!entry) return;
    this.pax = new Map();
    this.longName = this.longLink = null;
    this.entries.push(entry);
    const dataLength = HEADER_ONLY.has(entry.type) ? 0 : entry.size;
    if (entry.type === 'reg' && dataLength > 0) {
      this.dataEntry = entry;
      this.dataHash = createHash('sha256');
    } else if (entry.type === 'reg') {
      entry.sha256 = createHash('sha256').digest('hex');
    }
    this.startData(dataLength);
  }

  private stop(reason: string): null {
    this.error = reason;
    return null;
  }

  private entryFromHeader(b: Uint8Array, flag: string, headerSize: number, at: number): TarEntry | null {
    for (const key of this.pax.keys()) {
      if (key.startsWith('GNU.sparse.')) return this.stop(`GNU sparse entry at offset ${at} is not supported`);
    }
    const magic = latin1.decode(b.subarray(257, 263));
    const star = magic === 'ustar\0' && latin1.decode(b.subarray(508, 512)) === 'tar\0';
    // Copies: `b` is the walker's reused header block.
    let name: Uint8Array = new Uint8Array(cString(b.subarray(0, 100)));
    if (magic === 'ustar\0') {
      const prefix = cString(b.subarray(345, star ? 476 : 500));
      if (prefix.length > 0) name = concatBytes(concatBytes(prefix, Uint8Array.of(0x2f)), name);
    }
    let linkname: Uint8Array = new Uint8Array(cString(b.subarray(157, 257)));
    let size = headerSize;
    const paxPath = this.pax.get('path');
    if (paxPath?.length) name = paxPath;
    const paxLink = this.pax.get('linkpath');
    if (paxLink?.length) linkname = paxLink;
    const paxSize = this.pax.get('size');
    if (paxSize?.length) {
      const text = latin1.decode(paxSize);
      size = /^[0-9]+$/.test(text) ? Number(text) : NaN;
      if (!Number.isSafeInteger(size)) return this.stop(`bad PAX size for the entry at offset ${at}`);
    }
    if (this.longName?.length) name = this.longName;
    if (this.longLink?.length) linkname = this.longLink;
    const type = flag === '\0' ? (name[name.length - 1] === 0x2f ? 'dir' : 'reg') : TYPE_NAMES[flag];
    if (!type) return this.stop(`tar entry type '${flag}' at offset ${at} is not indexable`);
    return { offset: this.pos, size, name, linkname, type, sha256: null };
  }
}

// ---------------------------------------------------------------------------------------------------

const utf8 = new TextDecoder();

/** A name for a problem line: decoded leniently and escaped so it stays on one line. */
function display(name: Uint8Array): string {
  return JSON.stringify(utf8.decode(name)).slice(1, -1);
}

function message(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
}

/** The largest i with points[i] <= value (points ascending), or -1. */
function lastAtOrBelow(points: number[], value: number): number {
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

interface Plan {
  spanRanges: ByteRange[];
  /** gzip only: extractions from checkpoints, by ascending start byte. */
  extractions: CheckpointExtraction[];
  /** uncompressed only: file slices of the layer itself. */
  slices: FileRange[];
  /** gzip only: 32 KiB before each checkpoint's `out` in the uncompressed stream. */
  windowRanges: ByteRange[];
  checkpoints: Checkpoint[];
  /** Where each extracted file came from, for problem lines. */
  sourceOf: Map<number, string>;
}

function planGzip(ztoc: Ztoc, problems: string[]): Plan | null {
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
  const plan: Plan = { spanRanges, extractions: [], slices: [], windowRanges, checkpoints, sourceOf: new Map() };
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

function planUncompressed(ztoc: Ztoc, problems: string[]): Plan | null {
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
  const plan: Plan = { spanRanges, extractions: [], slices: [], windowRanges: [], checkpoints: [], sourceOf: new Map() };
  ztoc.toc.forEach((m, entry) => {
    if (m.type !== 'reg' || m.uncompressedSize <= 0) return;
    plan.slices.push({ entry, start: m.uncompressedOffset, end: m.uncompressedOffset + m.uncompressedSize });
    plan.sourceOf.set(entry, `span ${Math.floor(m.uncompressedOffset / zinfo.spanSize)}`);
  });
  return plan;
}

function compareEntries(ztoc: Ztoc, walker: TarWalker, problems: string[]): void {
  const tar = walker.entries;
  if (walker.error) problems.push(`tar stream: ${walker.error}`);
  if (ztoc.toc.length !== tar.length) problems.push(`TOC lists ${ztoc.toc.length} entries but the tar stream has ${tar.length}`);
  for (let i = 0; i < Math.min(ztoc.toc.length, tar.length); i++) {
    const [m, t] = [ztoc.toc[i]!, tar[i]!];
    const label = `entry ${display(m.name)}`;
    if (!sameBytes(m.name, t.name)) problems.push(`${label}: the tar entry at position ${i} is named ${display(t.name)}`);
    if (m.type !== t.type) problems.push(`${label}: type ${m.type} but the tar entry is ${t.type}`);
    if (m.uncompressedOffset !== t.offset) {
      problems.push(`${label}: uncompressed_offset ${m.uncompressedOffset} but its data starts at ${t.offset}`);
    }
    if (m.uncompressedSize !== t.size) problems.push(`${label}: uncompressed_size ${m.uncompressedSize} but the tar entry has ${t.size}`);
    if (!sameBytes(m.linkname, t.linkname)) problems.push(`${label}: linkname ${display(m.linkname)} but the tar entry has ${display(t.linkname)}`);
  }
  if (walker.end !== null && walker.end !== ztoc.uncompressedArchiveSize) {
    problems.push(`uncompressed_archive_size ${ztoc.uncompressedArchiveSize} but the tar stream ends at ${walker.end}`);
  }
}

interface LayerPass {
  layerSize: number;
  spanDigests: (string | null)[];
  /** The layer bytes before checkpoint 0 (gzip only). */
  header: Uint8Array;
  /** Extracted sha256 per TOC entry index (null when extraction did not finish). */
  extracted: Map<number, string | null>;
  unfinished: Map<number, string>;
}

/** Pass 1, over the layer blob: span digests, gzip header, extraction; for tar layers also the tar walk. */
async function readLayer(layer: LayerSource, gzip: boolean, plan: Plan | null, walker: TarWalker): Promise<LayerPass> {
  const spanHasher = new RangeHasher(plan?.spanRanges ?? []);
  const sliceHasher = new RangeHasher(plan?.slices ?? []);
  const headerEnd = plan && gzip ? Math.min(plan.checkpoints[0]!.in, MAX_GZIP_HEADER) : 0;
  let header: Uint8Array = new Uint8Array(0);
  const extractions = plan?.extractions ?? [];
  let nextExtraction = 0;
  let active: CheckpointExtraction[] = [];
  let layerSize = 0;
  for await (const chunk of layer()) {
    const pos = layerSize;
    layerSize += chunk.length;
    spanHasher.update(pos, chunk);
    if (!gzip) {
      sliceHasher.update(pos, chunk);
      walker.push(chunk);
      continue;
    }
    if (pos < headerEnd) header = concatBytes(header, chunk.subarray(0, headerEnd - pos));
    while (nextExtraction < extractions.length && extractions[nextExtraction]!.startByte < layerSize) {
      active.push(extractions[nextExtraction++]!);
    }
    for (const extraction of active) extraction.feed(chunk, pos);
    active = active.filter((e) => !e.done);
  }
  if (!gzip) walker.finish();

  const extracted = new Map<number, string | null>();
  const unfinished = new Map<number, string>();
  const sliceDigests = sliceHasher.finish();
  plan?.slices.forEach((f, i) => extracted.set(f.entry, sliceDigests[i] ?? null));
  for (const extraction of extractions) {
    const digests = extraction.hasher.finish();
    extraction.files.forEach((f, i) => {
      extracted.set(f.entry, digests[i] ?? null);
      if (digests[i] == null) unfinished.set(f.entry, extraction.unfinishedReason());
    });
  }
  return { layerSize, spanDigests: spanHasher.finish(), header, extracted, unfinished };
}

function checkGzipHeader(header: Uint8Array, checkpoint0: Checkpoint, problems: string[]): void {
  try {
    const length = gzipHeaderLength(header);
    if (length !== checkpoint0.in) {
      const actual = length === 0 ? 'longer than that' : `${length} bytes long`;
      problems.push(`gzip header: checkpoint 0 is at in=${checkpoint0.in} but the gzip header is ${actual}`);
    }
  } catch (err) {
    problems.push(`gzip header: layer bytes [0, ${checkpoint0.in}) are not a gzip header (${message(err)})`);
  }
}

/** Pass 2, gzip only: the tar walk over an independent full decompression, and the checkpoint windows. */
async function readUncompressed(layer: LayerSource, plan: Plan | null, walker: TarWalker, problems: string[]): Promise<void> {
  const windowHasher = new RangeHasher(plan?.windowRanges ?? []);
  await gunzipInto(layer, problems, (pos, chunk) => {
    windowHasher.update(pos, chunk);
    walker.push(chunk);
  });
  walker.finish();
  windowHasher.finish().forEach((hex, i) => {
    const cp = plan!.checkpoints[i]!;
    const expected = createHash('sha256').update(cp.window).digest('hex');
    if (hex !== expected) problems.push(`checkpoint ${i} window differs from the 32 KiB of uncompressed data before out=${cp.out}`);
  });
}

/** Compares extracted contents with the tar walk's; returns how many files were compared. */
function compareFiles(ztoc: Ztoc, plan: Plan | null, pass: LayerPass, walker: TarWalker, problems: string[]): number {
  let filesChecked = 0;
  for (const [entry, got] of pass.extracted) {
    const name = display(ztoc.toc[entry]!.name);
    const source = plan!.sourceOf.get(entry)!;
    if (got === null) {
      problems.push(`file ${name}: could not be extracted from ${source}: ${pass.unfinished.get(entry) ?? 'it lies outside the layer'}`);
      continue;
    }
    const expected = walker.entries[entry]?.sha256;
    if (expected == null) continue; // no tar data to compare with; compareEntries reported why
    filesChecked++;
    if (got !== expected) problems.push(`file ${name}: content differs when extracted from ${source}`);
  }
  return filesChecked;
}

/**
 * Verifies a zTOC against its layer like a consumer would, plus a full extraction check.
 * `layer` is called once per pass (twice for gzip) and must yield the layer blob's bytes in order.
 */
export async function verifyZtoc(
  layer: LayerSource,
  ztoc: Ztoc,
  options: { onProgress?: (msg: string) => void } = {},
): Promise<VerifyReport> {
  const progress = options.onProgress ?? (() => {});
  const problems: string[] = [];
  const gzip = ztoc.compressionAlgorithm === 'gzip';
  if (ztoc.spanDigests.length !== ztoc.maxSpanId + 1) {
    problems.push(`${ztoc.spanDigests.length} span digests for max_span_id ${ztoc.maxSpanId}`);
  }
  const plan = gzip ? planGzip(ztoc, problems) : planUncompressed(ztoc, problems);
  const walker = new TarWalker();

  progress(`pass 1: ${plan?.spanRanges.length ?? 0} span digests, extracting ${plan?.sourceOf.size ?? 0} files`);
  const pass = await readLayer(layer, gzip, plan, walker);
  if (pass.layerSize !== ztoc.compressedArchiveSize) {
    problems.push(`compressed_archive_size ${ztoc.compressedArchiveSize} but the layer is ${pass.layerSize} bytes`);
  }
  pass.spanDigests.forEach((hex, i) => {
    const expected = ztoc.spanDigests[i];
    const got = hex === null ? 'nothing (the range lies outside the layer)' : `sha256:${hex}`;
    if (expected !== undefined && got !== expected) problems.push(`span ${i} digest mismatch: expected ${expected} got ${got}`);
  });
  if (gzip) {
    if (plan) checkGzipHeader(pass.header, plan.checkpoints[0]!, problems);
    progress('pass 2: decompressing the layer and walking the tar stream');
    await readUncompressed(layer, plan, walker, problems);
  }

  compareEntries(ztoc, walker, problems);
  const filesChecked = compareFiles(ztoc, plan, pass, walker, problems);
  const spans = pass.spanDigests.length;
  progress(problems.length === 0 ? `OK: ${spans} spans, ${filesChecked} files` : `${problems.length} problems`);
  return { spans, filesChecked, problems };
}

/** Streams the gunzipped layer into `sink`; a decompression failure is a problem, a read failure is thrown. */
async function gunzipInto(layer: LayerSource, problems: string[], sink: (pos: number, chunk: Uint8Array) => void): Promise<void> {
  let readError: unknown = null;
  async function* source(): AsyncIterable<Uint8Array> {
    try {
      yield* layer();
    } catch (err) {
      readError = err;
      throw err;
    }
  }
  let pos = 0;
  try {
    await pipeline(source(), createGunzip(), async (chunks: AsyncIterable<Uint8Array>) => {
      for await (const chunk of chunks) {
        sink(pos, chunk);
        pos += chunk.length;
      }
    });
  } catch (err) {
    if (readError !== null) throw readError;
    problems.push(`layer does not decompress: ${message(err)}`);
  }
}
