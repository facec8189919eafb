// Typings for the parts of pako's low-level zlib port we use (pako ships none for lib/zlib).
declare module 'pako/lib/zlib/zstream.js' {
  export interface InflateState {
    hold: number;
    bits: number;
    last: boolean | number;
    mode: number;
    wsize: number;
  }
  export default class ZStream {
    input: Uint8Array | null;
    next_in: number;
    avail_in: number;
    total_in: number;
    output: Uint8Array | null;
    next_out: number;
    avail_out: number;
    total_out: number;
    msg: string;
    state: InflateState | null;
    data_type: number;
  }
}

declare module 'pako/lib/zlib/inflate.js' {
  import type ZStream from 'pako/lib/zlib/zstream.js';
  export function inflateInit2(strm: ZStream, windowBits: number): number;
  export function inflateReset(strm: ZStream): number;
  export function inflate(strm: ZStream, flush: number): number;
  export function inflateSetDictionary(strm: ZStream, dictionary: Uint8Array): number;
  export function inflateEnd(strm: ZStream): number;
}
