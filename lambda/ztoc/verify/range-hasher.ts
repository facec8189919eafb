// Hashing of many (possibly overlapping) byte ranges of one stream, fed chunk by chunk.

import type { Hash } from 'node:crypto';
import { createHash } from 'node:crypto';

export interface ByteRange {
  start: number;
  /** Infinity = up to the end of the stream. */
  end: number;
  /** Zero bytes hashed before the range (checkpoint windows before 32 KiB of output). */
  zeroPrefix?: number;
}

export class RangeHasher {
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
