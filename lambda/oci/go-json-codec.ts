// Go encoding/json Marshal and Unmarshal for typed values described by a small schema of Go types.
// Structs print their fields in declaration order, maps with keys sorted by byte order, compact, with
// Go's HTML-safe string escaping; `omitempty` follows Go's emptiness rules. Decoding follows
// json.Unmarshal into a fresh value: unknown fields dropped, keys matched exactly first and then
// case-insensitively, duplicate keys applied in order, `null` leaving scalars untouched.
//
// JavaScript representation of Go values:
//   string → string (undefined reads as ""), int → number (safe integers only),
//   []byte → base64 text, map[string]string → Record<string, string>,
//   slice → array, pointer → object; a nil slice/map/[]byte/pointer is null or undefined.
// Decoding leaves `omitempty` fields that are empty absent, and fills other fields with Go zero values.

import { GoJsonError } from './errors.ts';
import { type JsonNode, parseJson } from './go-json-parse.ts';
import { compareGoStrings, toWellFormed } from './go-strings.ts';

export type GoType =
  | { readonly kind: 'string' }
  | { readonly kind: 'int' }
  | { readonly kind: 'bytes' }
  | { readonly kind: 'stringMap' }
  | { readonly kind: 'slice'; readonly of: GoType }
  | { readonly kind: 'pointer'; readonly to: GoStruct }
  | GoStruct;

export interface GoStruct {
  readonly kind: 'struct';
  readonly fields: readonly GoField[];
}

export interface GoField {
  /** The JSON key (the name in the Go struct tag). */
  readonly json: string;
  /** The JavaScript property; defaults to the JSON key. */
  readonly prop?: string;
  readonly type: GoType;
  readonly omitempty?: boolean;
}

export const goString: GoType = { kind: 'string' };
export const goInt: GoType = { kind: 'int' };
export const goBytes: GoType = { kind: 'bytes' };
export const goStringMap: GoType = { kind: 'stringMap' };
export const goSlice = (of: GoType): GoType => ({ kind: 'slice', of });
export const goPointer = (to: GoStruct): GoType => ({ kind: 'pointer', to });
export const goStruct = (fields: readonly GoField[]): GoStruct => ({ kind: 'struct', fields });

type Obj = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------- encode

/** Go `json.Marshal(value)` as UTF-8 bytes. */
export function goMarshal(type: GoType, value: unknown): Uint8Array {
  return new TextEncoder().encode(goMarshalString(type, value));
}

/** Go `json.Marshal(value)` as text (lone surrogates already replaced, so encoding it is lossless). */
export function goMarshalString(type: GoType, value: unknown): string {
  const parts: string[] = [];
  encode(type, value, parts, '$');
  return parts.join('');
}

function encode(type: GoType, value: unknown, out: string[], path: string): void {
  switch (type.kind) {
    case 'string':
      out.push(goQuote(value === undefined ? '' : expect<string>(value, 'string', path)));
      return;
    case 'int':
      out.push(formatInt(value === undefined ? 0 : value, path));
      return;
    case 'bytes':
      out.push(value == null ? 'null' : goQuote(normalizeBase64(expect<string>(value, 'string', path), path)));
      return;
    case 'stringMap':
      encodeMap(value, out, path);
      return;
    case 'slice': {
      if (value == null) {
        out.push('null');
        return;
      }
      if (!Array.isArray(value)) throw new GoJsonError(`${path}: expected an array`);
      out.push('[');
      value.forEach((item, i) => {
        if (i > 0) out.push(',');
        encode(type.of, item, out, `${path}[${i}]`);
      });
      out.push(']');
      return;
    }
    case 'pointer':
      if (value == null) out.push('null');
      else encode(type.to, value, out, path);
      return;
    case 'struct':
      encodeStruct(type, value === undefined ? {} : expect<Obj>(value, 'object', path), out, path);
      return;
  }
}

function encodeStruct(type: GoStruct, value: Obj, out: string[], path: string): void {
  out.push('{');
  let first = true;
  for (const field of type.fields) {
    const v = value[field.prop ?? field.json];
    if (field.omitempty && isEmpty(field.type, v)) continue;
    if (!first) out.push(',');
    first = false;
    out.push(goQuote(field.json), ':');
    encode(field.type, v, out, `${path}.${field.json}`);
  }
  out.push('}');
}

function encodeMap(value: unknown, out: string[], path: string): void {
  if (value == null) {
    out.push('null');
    return;
  }
  const map = expect<Obj>(value, 'object', path);
  // Go sorts the UTF-8 keys bytewise; lone surrogates become U+FFFD first, as in Go's string.
  const entries = Object.keys(map).map((k) => [toWellFormed(k), expect<string>(map[k], 'string', `${path}.${k}`)] as const);
  entries.sort((a, b) => compareGoStrings(a[0], b[0]));
  out.push('{');
  entries.forEach(([k, v], i) => {
    if (i > 0) out.push(',');
    out.push(goQuote(k), ':', goQuote(v));
  });
  out.push('}');
}

/** Go's `isEmptyValue` for the kinds we model; structs are never empty. */
function isEmpty(type: GoType, value: unknown): boolean {
  switch (type.kind) {
    case 'string':
    case 'int':
    case 'bytes':
      return !value;
    case 'stringMap':
      return value == null || Object.keys(value as Obj).length === 0;
    case 'slice':
      return value == null || (value as unknown[]).length === 0;
    case 'pointer':
      return value == null;
    case 'struct':
      return false;
  }
}

function formatInt(value: unknown, path: string): string {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new GoJsonError(`${path}: expected a safe integer, got ${String(value)}`);
  }
  return String(value === 0 ? 0 : value); // no "-0"
}

function expect<T>(value: unknown, kind: 'string' | 'object', path: string): T {
  const ok = kind === 'string' ? typeof value === 'string' : typeof value === 'object' && value !== null && !Array.isArray(value);
  if (!ok) throw new GoJsonError(`${path}: expected a ${kind}, got ${value === null ? 'null' : typeof value}`);
  return value as T;
}

const ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

// Everything Go escapes with HTML escaping on: quote, backslash, controls, <, >, &, U+2028, U+2029.
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are among what it escapes
const NEEDS_ESCAPE = /["\\\u0000-\u001f<>&\u2028\u2029]/g;

/** A JSON string literal exactly as Go's encoder writes it (escapeHTML on, Go ≥ 1.22 `\b`/`\f`). */
export function goQuote(s: string): string {
  const escaped = toWellFormed(s).replace(NEEDS_ESCAPE, (c) => ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `"${escaped}"`;
}

// Go's base64.StdEncoding (not Strict): padded, `\r`/`\n` ignored, stray bits in the last quantum allowed.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function normalizeBase64(text: string, path: string): string {
  const compact = text.replace(/[\r\n]/g, '');
  if (!BASE64.test(compact)) throw new GoJsonError(`${path}: illegal base64 data`);
  return Buffer.from(compact, 'base64').toString('base64');
}

// ---------------------------------------------------------------------------------------------- decode

/** Go `json.Unmarshal(bytes, &v)` into a fresh value of the given type. */
export function goUnmarshal(type: GoType, bytes: Uint8Array): unknown {
  // A top-level null leaves the fresh value at its zero value.
  return decode(type, parseJson(bytes), undefined, '$') ?? zeroValue(type);
}

function decode(type: GoType, node: JsonNode, existing: unknown, path: string): unknown {
  if (node.kind === 'null') {
    // Go: null sets pointers, maps, slices to nil and leaves everything else untouched.
    return type.kind === 'slice' || type.kind === 'pointer' || type.kind === 'stringMap' || type.kind === 'bytes' ? null : existing;
  }
  switch (type.kind) {
    case 'string':
      return expectNode(node, 'string', 'string', path).value;
    case 'int':
      return parseInt64(expectNode(node, 'number', 'int64', path).text, path);
    case 'bytes':
      return normalizeBase64(expectNode(node, 'string', '[]byte', path).value, path);
    case 'stringMap': {
      const map: Obj = existing == null ? {} : (existing as Obj);
      for (const [key, value] of expectNode(node, 'object', 'map[string]string', path).members) {
        // A null member stores the zero value "".
        const v = value.kind === 'null' ? '' : expectNode(value, 'string', 'string', `${path}.${key}`).value;
        Object.defineProperty(map, key, { value: v, enumerable: true, writable: true, configurable: true });
      }
      return map;
    }
    case 'slice':
      return expectNode(node, 'array', 'slice', path).items.map((item, i) => decode(type.of, item, undefined, `${path}[${i}]`));
    case 'pointer':
      return decode(type.to, node, existing ?? undefined, path);
    case 'struct':
      return decodeStruct(type, expectNode(node, 'object', 'struct', path), existing as Obj | undefined, path);
  }
}

function decodeStruct(type: GoStruct, node: Extract<JsonNode, { kind: 'object' }>, existing: Obj | undefined, path: string): Obj {
  const target: Obj = existing ? { ...existing } : {};
  for (const [key, value] of node.members) {
    const field = type.fields.find((f) => f.json === key) ?? type.fields.find((f) => foldName(f.json) === foldName(key));
    if (!field) continue; // unknown fields are dropped
    const prop = field.prop ?? field.json;
    target[prop] = decode(field.type, value, target[prop], `${path}.${field.json}`);
  }
  // Present the result canonically: empty omitempty fields absent, other fields at their Go zero value.
  for (const field of type.fields) {
    const prop = field.prop ?? field.json;
    if (field.omitempty && isEmpty(field.type, target[prop])) delete target[prop];
    else if (target[prop] === undefined) target[prop] = zeroValue(field.type);
  }
  return target;
}

function zeroValue(type: GoType): unknown {
  switch (type.kind) {
    case 'string':
      return '';
    case 'int':
      return 0;
    case 'struct':
      return decodeStruct(type, { kind: 'object', members: [] }, undefined, '');
    default:
      return null;
  }
}

/**
 * Go's case-insensitive key match (encoding/json `foldName`: ToUpper(ToLower(r))). Field names are
 * ASCII, so only the non-ASCII runes that fold onto ASCII letters matter: Kelvin K, long s, İ and ı.
 */
function foldName(name: string): string {
  return name.replace(/[a-z\u212a\u017f\u0130\u0131]/g, (c) => FOLD[c] ?? c.toUpperCase());
}
const FOLD: Record<string, string> = { '\u212a': 'K', '\u017f': 'S', '\u0130': 'I', '\u0131': 'I' };

function expectNode<K extends JsonNode['kind']>(node: JsonNode, kind: K, goType: string, path: string): Extract<JsonNode, { kind: K }> {
  if (node.kind !== kind) throw new GoJsonError(`json: cannot unmarshal ${node.kind} into Go value of type ${goType} at ${path}`);
  return node as Extract<JsonNode, { kind: K }>;
}

/** strconv.ParseInt(text, 10, 64), further limited to JavaScript's safe integers. */
function parseInt64(text: string, path: string): number {
  if (!/^-?[0-9]+$/.test(text)) throw new GoJsonError(`json: cannot unmarshal number ${text} into Go value of type int64 at ${path}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new GoJsonError(`json: number ${text} at ${path} is outside the safe integer range`);
  return n === 0 ? 0 : n;
}
