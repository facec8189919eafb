// gzip framing.

export const GZIP_TRAILER_SIZE = 8;
export const MAX_GZIP_HEADER = 1 << 20;

/** Length of the gzip member header at the start of `b`, or 0 while `b` ends inside it. */
export function gzipHeaderLength(b: Uint8Array): number {
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

export function concatBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
