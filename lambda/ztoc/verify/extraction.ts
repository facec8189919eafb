// Extraction from a checkpoint: raw inflate primed with the checkpoint's bits and window.

import * as pako from 'pako/lib/zlib/inflate.js';
import PakoZStream from 'pako/lib/zlib/zstream.js';
import type { Checkpoint } from '../types.ts';
import { concatBytes, GZIP_TRAILER_SIZE, gzipHeaderLength, MAX_GZIP_HEADER } from './gzip.ts';
import { type ByteRange, RangeHasher } from './range-hasher.ts';

// Static imports (typed in pako-zlib.d.ts), so every bundle carries pako: the package does not depend on
// it at run time, and a require() resolved from node_modules would fail where it is installed.
type PakoStream = PakoZStream;
const Z_OK = 0;
const Z_STREAM_END = 1;
const Z_BUF_ERROR = -5;

const INFLATE_OUT = 1 << 16;

export interface FileRange extends ByteRange {
  /** Index of the entry in the zTOC's TOC. */
  entry: number;
}

/** Inflates from one checkpoint until every file starting in its span has been hashed. */
export class CheckpointExtraction {
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
