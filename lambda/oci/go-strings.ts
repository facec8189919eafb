// Go string semantics in JavaScript. Go strings are UTF-8 bytes, JavaScript strings UTF-16: these helpers
// give Go's ordering and Go's treatment of invalid UTF-8 so that JSON round trips match upstream bytes.

/** Go's `<` on strings: byte order of the UTF-8 encodings, i.e. code-point order (not UTF-16 order). */
export function compareGoStrings(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const ca = ia.next();
    const cb = ib.next();
    if (ca.done || cb.done) return ca.done ? (cb.done ? 0 : -1) : 1;
    const d = ca.value.codePointAt(0)! - cb.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Replaces lone surrogates with U+FFFD: what the string becomes once UTF-8 encoded for Go. */
export function toWellFormed(s: string): string {
  return s.replace(LONE_SURROGATE, '\uFFFD');
}

/**
 * Decodes UTF-8 the way Go's `utf8.DecodeRune` walks it: every byte that does not start a valid,
 * complete, shortest-form sequence becomes one U+FFFD (TextDecoder instead replaces a maximal invalid
 * subpart with one U+FFFD, which differs for truncated sequences). Surrogate code points are invalid.
 */
export function decodeUtf8Go(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let out = '';
  let i = start;
  while (i < end) {
    const b0 = bytes[i]!;
    if (b0 < 0x80) {
      // Runs of ASCII are the common case; copy them in bounded slices (spread arguments are limited).
      let j = i + 1;
      while (j < end && j - i < 8192 && bytes[j]! < 0x80) j++;
      out += String.fromCharCode(...bytes.subarray(i, j));
      i = j;
      continue;
    }
    const [cp, size] = decodeRune(bytes, i, end);
    out += String.fromCodePoint(cp);
    i += size;
  }
  return out;
}

/** One non-ASCII rune at `i`: [code point, byte length], or [0xFFFD, 1] when invalid. */
function decodeRune(bytes: Uint8Array, i: number, end: number): [number, number] {
  const b0 = bytes[i]!;
  let size: number;
  let cp: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    size = 2;
    cp = b0 & 0x1f;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    size = 3;
    cp = b0 & 0x0f;
    if (b0 === 0xe0) lo = 0xa0; // no overlong forms
    if (b0 === 0xed) hi = 0x9f; // no surrogates
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    size = 4;
    cp = b0 & 0x07;
    if (b0 === 0xf0) lo = 0x90;
    if (b0 === 0xf4) hi = 0x8f; // nothing above U+10FFFF
  } else {
    return [0xfffd, 1];
  }
  if (i + size > end) return [0xfffd, 1];
  for (let k = 1; k < size; k++) {
    const b = bytes[i + k]!;
    if (b < (k === 1 ? lo : 0x80) || b > (k === 1 ? hi : 0xbf)) return [0xfffd, 1];
    cp = (cp << 6) | (b & 0x3f);
  }
  return [cp, size];
}
