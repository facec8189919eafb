// A strict JSON reader that accepts exactly what Go's encoding/json accepts and decodes strings the way
// it does. JSON.parse is not enough: it loses number text (Go rejects `1.0` for an int field), keeps
// lone surrogates (Go turns `\ud800` into U+FFFD) and sees invalid UTF-8 only after a lossy decode.

import { GoJsonError } from './errors.ts';
import { decodeUtf8Go } from './go-strings.ts';

export type JsonNode =
  | { readonly kind: 'null' }
  | { readonly kind: 'bool'; readonly value: boolean }
  | { readonly kind: 'number'; readonly text: string }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'array'; readonly items: readonly JsonNode[] }
  /** Members in document order; duplicate keys are kept (Go applies them in order, last wins). */
  | { readonly kind: 'object'; readonly members: readonly (readonly [string, JsonNode])[] };

/** Go's decoder refuses nesting deeper than this. */
const MAX_DEPTH = 10000;

export function parseJson(bytes: Uint8Array): JsonNode {
  const reader = new Reader(bytes);
  reader.skipSpace();
  let node: JsonNode;
  try {
    node = reader.value(0);
  } catch (err) {
    // Deep nesting can exhaust the JavaScript stack before Go's depth limit is reached.
    if (err instanceof RangeError) throw new GoJsonError('invalid JSON: nested too deeply');
    throw err;
  }
  reader.skipSpace();
  if (reader.pos < bytes.length) reader.fail('after top-level value');
  return node;
}

class Reader {
  pos = 0;
  constructor(private readonly bytes: Uint8Array) {}

  fail(where: string): never {
    if (this.pos >= this.bytes.length) throw new GoJsonError('invalid JSON: unexpected end of input');
    const c = this.bytes[this.pos]!;
    const shown = c >= 0x20 && c < 0x7f ? `'${String.fromCharCode(c)}'` : `byte 0x${c.toString(16)}`;
    throw new GoJsonError(`invalid JSON: invalid character ${shown} ${where} at offset ${this.pos}`);
  }

  skipSpace(): void {
    const b = this.bytes;
    while (this.pos < b.length) {
      const c = b[this.pos]!;
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      this.pos++;
    }
  }

  private expect(c: number, where: string): void {
    this.skipSpace();
    if (this.bytes[this.pos] !== c) this.fail(where);
    this.pos++;
  }

  value(depth: number): JsonNode {
    if (depth >= MAX_DEPTH) throw new GoJsonError('invalid JSON: exceeded max depth');
    const c = this.bytes[this.pos];
    switch (c) {
      case 0x7b: // {
        return this.object(depth);
      case 0x5b: // [
        return this.array(depth);
      case 0x22: // "
        return { kind: 'string', value: this.string() };
      case 0x74: // t
        return this.literal('true', { kind: 'bool', value: true });
      case 0x66: // f
        return this.literal('false', { kind: 'bool', value: false });
      case 0x6e: // n
        return this.literal('null', { kind: 'null' });
      default:
        return this.number();
    }
  }

  private literal(word: string, node: JsonNode): JsonNode {
    for (let k = 0; k < word.length; k++) {
      if (this.bytes[this.pos] !== word.charCodeAt(k)) this.fail(`in literal ${word}`);
      this.pos++;
    }
    return node;
  }

  /** RFC 8259 number grammar, kept as text so that integer fields can apply Go's ParseInt rules. */
  private number(): JsonNode {
    const b = this.bytes;
    const start = this.pos;
    const digits = (): number => {
      const from = this.pos;
      while (this.pos < b.length && b[this.pos]! >= 0x30 && b[this.pos]! <= 0x39) this.pos++;
      return this.pos - from;
    };
    if (b[this.pos] === 0x2d) this.pos++;
    if (b[this.pos] === 0x30) this.pos++;
    else if (digits() === 0) this.fail('looking for beginning of value');
    if (b[this.pos] === 0x2e) {
      this.pos++;
      if (digits() === 0) this.fail('after decimal point in numeric literal');
    }
    if (b[this.pos] === 0x65 || b[this.pos] === 0x45) {
      this.pos++;
      if (b[this.pos] === 0x2b || b[this.pos] === 0x2d) this.pos++;
      if (digits() === 0) this.fail('in exponent of numeric literal');
    }
    return { kind: 'number', text: decodeUtf8Go(b, start, this.pos) };
  }

  private array(depth: number): JsonNode {
    const items: JsonNode[] = [];
    this.sequence(0x5d, 'array element', () => items.push(this.value(depth + 1)));
    return { kind: 'array', items };
  }

  private object(depth: number): JsonNode {
    const members: [string, JsonNode][] = [];
    this.sequence(0x7d, 'object key:value pair', () => {
      if (this.bytes[this.pos] !== 0x22) this.fail('looking for beginning of object key string');
      const key = this.string();
      this.expect(0x3a, 'after object key');
      this.skipSpace();
      members.push([key, this.value(depth + 1)]);
    });
    return { kind: 'object', members };
  }

  /** The comma-separated items of an array or object, from its opening bracket through `close`. */
  private sequence(close: number, item: string, readItem: () => void): void {
    this.pos++;
    this.skipSpace();
    if (this.bytes[this.pos] === close) {
      this.pos++;
      return;
    }
    for (;;) {
      this.skipSpace();
      readItem();
      this.skipSpace();
      const c = this.bytes[this.pos];
      if (c === close) {
        this.pos++;
        return;
      }
      if (c !== 0x2c) this.fail(`after ${item}`);
      this.pos++;
    }
  }

  /** A string at `pos` (on the opening quote), decoded as Go's `unquote` does. */
  private string(): string {
    const b = this.bytes;
    this.pos++;
    let out = '';
    let runStart = this.pos;
    for (;;) {
      if (this.pos >= b.length) this.fail('in string literal');
      const c = b[this.pos]!;
      if (c === 0x22) {
        out += decodeUtf8Go(b, runStart, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail('in string literal');
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += decodeUtf8Go(b, runStart, this.pos);
      out += this.escape();
      runStart = this.pos;
    }
  }

  /** One escape sequence at `pos` (on the backslash). */
  private escape(): string {
    const b = this.bytes;
    const e = b[this.pos + 1];
    // biome-ignore lint/complexity/useSimpleNumberKeys: byte values, in hex as the JSON grammar gives them
    const simple: Record<number, string> = { 0x22: '"', 0x5c: '\\', 0x2f: '/', 0x62: '\b', 0x66: '\f', 0x6e: '\n', 0x72: '\r', 0x74: '\t' };
    if (e !== undefined && simple[e] !== undefined) {
      this.pos += 2;
      return simple[e];
    }
    if (e !== 0x75) {
      this.pos++;
      this.fail('in string escape code');
    }
    const unit = this.hex4(this.pos + 2);
    this.pos += 6;
    if (unit < 0xd800 || unit > 0xdfff) return String.fromCharCode(unit);
    // Go pairs a high surrogate with an immediately following \u low surrogate; anything else is U+FFFD.
    if (unit <= 0xdbff && b[this.pos] === 0x5c && b[this.pos + 1] === 0x75) {
      const low = this.hex4(this.pos + 2);
      if (low >= 0xdc00 && low <= 0xdfff) {
        this.pos += 6;
        return String.fromCharCode(unit, low);
      }
    }
    return '\uFFFD';
  }

  private hex4(at: number): number {
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const c = this.bytes[at + k];
      const d = c === undefined ? -1 : hexValue(c);
      if (d < 0) {
        this.pos = at + k;
        this.fail('in \\u hexadecimal character escape');
      }
      v = v * 16 + d;
    }
    return v;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
