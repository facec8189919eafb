// A minimal tar walk (Go archive/tar semantics for the fields a zTOC records; docs/format.md §2).

import type { Hash } from 'node:crypto';
import { createHash } from 'node:crypto';
import { concatBytes } from './gzip.ts';

const MAX_TAR_META = 1 << 20; // Go-tar's limit for PAX and GNU long-name bodies

export interface TarEntry {
  offset: number;
  size: number;
  name: Uint8Array;
  linkname: Uint8Array;
  type: string;
  sha256: string | null;
}

export const TYPE_NAMES: Record<string, string> = {
  '0': 'reg',
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};
export const HEADER_ONLY = new Set(['hardlink', 'symlink', 'char', 'block', 'dir', 'fifo']);
export const latin1 = new TextDecoder('latin1');

export function cString(b: Uint8Array): Uint8Array {
  const nul = b.indexOf(0);
  return nul < 0 ? b : b.subarray(0, nul);
}

/** Go-tar numeric field: base-256 when the high bit is set, else octal with spaces/NULs trimmed. */
export function tarNumber(b: Uint8Array): number | null {
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

export function checksumOk(block: Uint8Array): boolean {
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
export function paxRecords(body: Uint8Array): Map<string, Uint8Array> {
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

export class TarWalker {
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
      this.startData(headerSize);
      return;
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
