// A software raw-deflate decoder that can start at any *bit* position with a preset window.
// Node's native zlib cannot start mid-byte (no inflatePrime) and does not report `data_type`, so this
// (pako's port of zlib's inflate, same state machine) is used for the two things native zlib cannot
// tell us: the exact bit offset of a checkpoint, and extraction from a checkpoint in `ztoc verify`.

import { inflate, inflateInit2, inflateReset, inflateSetDictionary } from 'pako/lib/zlib/inflate.js';
import ZStream from 'pako/lib/zlib/zstream.js';

const Z_NO_FLUSH = 0;
const Z_BLOCK = 5;
export const Z_OK = 0;
export const Z_STREAM_END = 1;
export const Z_BUF_ERROR = -5;

export interface SoftStart {
  /** The compressed bytes; `pos` indexes into them. */
  input: Uint8Array;
  /** Index in `input` of the first whole byte to decode. */
  pos: number;
  /** Number of high bits (0..7) of `input[pos - 1]` that come first. */
  bits: number;
  /** Index in `input` where decoding must stop (exclusive). */
  end: number;
  /** Preset dictionary (the 32 KiB window before the start), or undefined. */
  window?: Uint8Array;
}

/**
 * Holds one inflate stream, made on first use and reset for every later one: a checkpoint probe tries up
 * to eight starts, and allocating a fresh inflate state and 32 KiB window each time dominated builds with
 * small spans. Hence the rule below: one SoftInflater in use per slot at a time.
 */
export interface SoftSlot {
  strm?: ZStream;
}

const shared: SoftSlot = {};

/** Drops a slot's references to the caller's buffers (they can be megabytes); default: the shared slot. */
export function releaseSoftInflater(slot: SoftSlot = shared): void {
  if (slot.strm) {
    slot.strm.input = null;
    slot.strm.output = null;
  }
}

/**
 * A raw inflate stream positioned at an arbitrary bit. Only one may be in use at a time per slot (the
 * shared one by default): creating the next one resets the stream the previous one used.
 */
export class SoftInflater {
  private readonly strm: ZStream;

  constructor(start: SoftStart, slot: SoftSlot = shared) {
    let strm = slot.strm;
    if (!strm) {
      strm = slot.strm = new ZStream();
      if (inflateInit2(strm, -15) !== Z_OK) throw new Error('soft inflate: init failed');
    } else {
      inflateReset(strm);
      // pako's reset leaves its window allocated but sized 0, which would make the dictionary vanish.
      strm.state!.wsize = 32768;
    }
    this.strm = strm;
    if (start.window && inflateSetDictionary(strm, start.window) !== Z_OK) {
      throw new Error('soft inflate: cannot set dictionary');
    }
    if (start.bits > 0) {
      // inflatePrime equivalent: the top `bits` bits of the previous byte are the first bits to decode.
      const state = strm.state!;
      state.hold = start.input[start.pos - 1]! >>> (8 - start.bits);
      state.bits = start.bits;
    }
    strm.input = start.input;
    strm.next_in = start.pos;
    strm.avail_in = start.end - start.pos;
  }

  /**
   * Gives more input to a stream that consumed everything it had: `input[pos, end)`, where `pos` is the
   * same absolute byte the stream stopped at (the buffer may have moved since).
   */
  feed(input: Uint8Array, pos: number, end: number): void {
    const strm = this.strm;
    strm.input = input;
    strm.next_in = pos;
    strm.avail_in = end - pos;
  }

  /** Index in `input` of the next unread byte. */
  get inputPos(): number {
    return this.strm.next_in;
  }

  /** True when stopped at a block boundary (zlib `data_type & 128`). */
  get atBlockBoundary(): boolean {
    return (this.strm.data_type & 128) !== 0;
  }

  /** Unused bits in the last consumed byte (zlib `data_type & 7`), meaningful at a block boundary. */
  get heldBits(): number {
    return this.strm.data_type & 7;
  }

  /**
   * Decodes into `out[from, to)`. With `stopAtBlock`, returns at the next block boundary (Z_BLOCK).
   * Returns the zlib status and the number of bytes written; negative status = corrupt stream.
   */
  run(out: Uint8Array, from: number, to: number, stopAtBlock: boolean): { status: number; written: number } {
    const strm = this.strm;
    strm.output = out;
    strm.next_out = from;
    strm.avail_out = to - from;
    const status = inflate(strm, stopAtBlock ? Z_BLOCK : Z_NO_FLUSH);
    return { status, written: strm.next_out - from };
  }
}
