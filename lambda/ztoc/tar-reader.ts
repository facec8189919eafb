// A push-based tar reader that reports exactly what Go's archive/tar Reader.Next() reports (docs/format.md
// §2): the zTOC's TOC is defined by Go-tar's behaviour, so every rule here mirrors Go's reader.go /
// strconv.go, including its quirks. Only header blocks and special bodies (PAX, GNU long names) are
// buffered; file data is skipped with arithmetic, so a chunk costs O(1) outside header blocks.

import { Buffer } from 'node:buffer';
import { DEFAULT_LIMITS } from './limits.ts';
import { keepShape } from './shapes.ts';
import { TocTable } from './toc-table.ts';
import type { EntryType, FileMetadata, PaxRecord } from './types.ts';
import { ZtocError } from './types.ts';

const BLOCK_SIZE = 512;
const DEFAULT_MAX_SPECIAL_BODY_SIZE = 1 << 20; // Go's maxSpecialFileSize

// Reader states: where the next pushed byte goes.
const READ_HEADER = 0; // filling a header block
const READ_SECOND_ZERO = 1; // a zero block was read; filling the block that decides end-of-archive
const READ_SPECIAL_BODY = 2; // filling the body of an x/g/L/K header
const SKIP = 3; // skipping entry data and block padding up to skipUntil
const DONE = 4;

type TarFormat = 'v7' | 'ustar' | 'gnu' | 'star';

/** Fields of one header block as Go's readHeader parses them. */
interface RawHeader {
  typeflag: number;
  name: Uint8Array;
  linkname: Uint8Array;
  size: number | bigint;
  mode: number | bigint;
  uid: number | bigint;
  gid: number | bigint;
  mtime: number | bigint;
  uname: Uint8Array;
  gname: Uint8Array;
  devmajor: number | bigint;
  devminor: number | bigint;
}

/** PAX records of one `x` header, keyed by the key's bytes as a latin1 string (a byte-exact map key). */
type PaxRecords = Map<string, PaxRecord>;

interface GoTime {
  seconds: number | bigint;
  nanos: number;
}

const EMPTY: Uint8Array = new Uint8Array(0);
const NO_RECORDS: PaxRecord[] = [];

export interface GoTarReaderOptions {
  /** Largest PAX / GNU long-name body accepted (Go: 1 MiB). */
  maxSpecialBodySize?: number;
  /** Most records in one PAX header (limit paxRecordsPerEntry). */
  maxPaxRecords?: number;
  /**
   * The TOC bytes allowed so far (limit tocBytes*), asked after each entry: the builder lets it grow
   * with the compressed bytes read. Unlimited when absent.
   */
  tocBytesAllowed?: () => number;
}

export class GoTarReader {
  /** Entries found so far, in tar order, as compact columns. */
  readonly toc = new TocTable();

  private readonly maxSpecialBodySize: number;
  private state = READ_HEADER;
  private failure: ZtocError | undefined;
  /** Bytes of the uncompressed stream consumed so far. */
  private position = 0;
  private endOfArchive = 0;

  private readonly block = new Uint8Array(BLOCK_SIZE);
  private blockFill = 0;

  private dataEnd = 0; // stream position where the current entry's data ends (padding follows)
  private skipUntil = 0; // stream position of the next header block
  private skippedEntry = -1; // TOC index of the entry being skipped, for the truncation message

  private special: { typeflag: number; headerOffset: number; body: Uint8Array; fill: number } | undefined;
  // Meta state that Go keeps for one Next() call and applies to the next real entry.
  private paxRecords: PaxRecords | undefined;
  private gnuLongName: Uint8Array = EMPTY;
  private gnuLongLink: Uint8Array = EMPTY;

  private readonly maxPaxRecords: number;
  private readonly tocBytesAllowed: (() => number) | undefined;

  constructor(options: GoTarReaderOptions = {}) {
    this.maxSpecialBodySize = options.maxSpecialBodySize ?? DEFAULT_MAX_SPECIAL_BODY_SIZE;
    this.maxPaxRecords = options.maxPaxRecords ?? DEFAULT_LIMITS.paxRecordsPerEntry;
    this.tocBytesAllowed = options.tocBytesAllowed;
  }

  /** Entries found so far as objects (a materialized copy of `toc`, for tests and tools). */
  get entries(): FileMetadata[] {
    return this.toc.toArray();
  }

  /** True once Go-tar would have returned io.EOF (end-of-archive); further bytes are ignored. */
  get done(): boolean {
    return this.state === DONE;
  }

  /** Stream position right after Go-tar hit end-of-archive (docs/format.md §2.5); valid once `done`. */
  get archiveSize(): number {
    return this.endOfArchive;
  }

  /** Feed the next chunk of the uncompressed stream. The caller may reuse `chunk` after return. */
  push(chunk: Uint8Array): void {
    if (this.failure) throw this.failure;
    try {
      this.consume(chunk);
    } catch (error) {
      if (error instanceof ZtocError) this.failure = error;
      throw error;
    }
  }

  /** Signal end of stream; throws where Go-tar returns an error instead of io.EOF. */
  end(): void {
    if (this.failure) throw this.failure;
    try {
      this.finish();
    } catch (error) {
      if (error instanceof ZtocError) this.failure = error;
      throw error;
    }
  }

  private consume(chunk: Uint8Array): void {
    const length = chunk.length;
    let offset = 0;
    while (offset < length) {
      switch (this.state) {
        case SKIP: {
          const n = Math.min(this.skipUntil - this.position, length - offset);
          offset += n;
          this.position += n;
          if (this.position === this.skipUntil) this.state = READ_HEADER;
          break;
        }
        case READ_HEADER:
        case READ_SECOND_ZERO: {
          let block: Uint8Array;
          if (this.blockFill === 0 && length - offset >= BLOCK_SIZE) {
            block = chunk.subarray(offset, offset + BLOCK_SIZE); // no copy when the block is whole
            offset += BLOCK_SIZE;
            this.position += BLOCK_SIZE;
          } else {
            const n = Math.min(BLOCK_SIZE - this.blockFill, length - offset);
            this.block.set(chunk.subarray(offset, offset + n), this.blockFill);
            this.blockFill += n;
            offset += n;
            this.position += n;
            if (this.blockFill < BLOCK_SIZE) break;
            this.blockFill = 0;
            block = this.block;
          }
          if (this.state === READ_SECOND_ZERO) this.onBlockAfterZeroBlock(block);
          else this.onHeaderBlock(block);
          break;
        }
        case READ_SPECIAL_BODY: {
          const special = this.special!;
          const n = Math.min(special.body.length - special.fill, length - offset);
          special.body.set(chunk.subarray(offset, offset + n), special.fill);
          special.fill += n;
          offset += n;
          this.position += n;
          if (special.fill === special.body.length) this.onSpecialBody();
          break;
        }
        default: // DONE: Go stops reading at end-of-archive
          return;
      }
    }
  }

  private finish(): void {
    switch (this.state) {
      case DONE:
        return;
      case SKIP:
        if (this.position < this.dataEnd) {
          const entry = this.toc.at(this.skippedEntry)!;
          throw new ZtocError(
            'truncated',
            `tar stream ends inside the data of ${describeName(entry.name)} (offset ${entry.uncompressedOffset}, ` +
              `${this.dataEnd - this.position} of ${this.dataEnd - entry.uncompressedOffset} bytes missing)`,
          );
        }
        break; // Go's tryReadFull returns io.EOF when the padding is cut short: a clean end
      case READ_HEADER:
      case READ_SECOND_ZERO:
        if (this.blockFill !== 0) {
          throw new ZtocError(
            'truncated',
            `tar stream ends inside a header block at offset ${this.position - this.blockFill} ` +
              `(${this.blockFill} of ${BLOCK_SIZE} bytes)`,
          );
        }
        break; // EOF on a block boundary (or after one zero block) is io.EOF for Go
      case READ_SPECIAL_BODY: {
        const special = this.special!;
        throw new ZtocError(
          'truncated',
          `tar stream ends inside the body of the ${typeName(special.typeflag)} header at offset ` +
            `${special.headerOffset} (${special.fill} of ${special.body.length} bytes)`,
        );
      }
    }
    this.markDone();
  }

  private markDone(): void {
    this.state = DONE;
    this.endOfArchive = this.position;
  }

  private onHeaderBlock(block: Uint8Array): void {
    if (isZeroBlock(block)) {
      this.state = READ_SECOND_ZERO;
      return;
    }
    const headerOffset = this.position - BLOCK_SIZE;
    const header = parseHeader(block, headerOffset);
    const typeflag = header.typeflag;
    // Go's first handleRegularFile: a negative size is an error for any type with a data section.
    if (!isHeaderOnlyType(typeflag) && isNegative(header.size)) {
      throw new ZtocError('bad-tar', `negative size in tar header at offset ${headerOffset}`);
    }
    switch (typeflag) {
      case 0x78: // 'x' PAX local header
      case 0x67: // 'g' PAX global header
      case 0x4c: // 'L' GNU long name
      case 0x4b: {
        // 'K' GNU long link
        const size = header.size;
        if (typeof size === 'bigint' || size > this.maxSpecialBodySize) {
          throw new ZtocError(
            'limit-exceeded',
            `${typeName(typeflag)} header at offset ${headerOffset} has a ${size}-byte body ` + `(limit ${this.maxSpecialBodySize})`,
            'tarSpecialBodyBytes',
          );
        }
        this.special = { typeflag, headerOffset, body: new Uint8Array(size), fill: 0 };
        this.state = READ_SPECIAL_BODY;
        if (size === 0) this.onSpecialBody();
        return;
      }
      default:
        this.onEntryHeader(header, headerOffset);
    }
  }

  private onBlockAfterZeroBlock(block: Uint8Array): void {
    if (!isZeroBlock(block)) {
      throw new ZtocError('bad-tar', `a zero block is followed by a non-zero block at offset ${this.position - BLOCK_SIZE}`);
    }
    this.markDone();
  }

  private onSpecialBody(): void {
    const { typeflag, headerOffset, body } = this.special!;
    this.special = undefined;
    switch (typeflag) {
      case 0x78:
        // Go replaces, not merges: only the last of consecutive `x` headers applies.
        this.paxRecords = parsePaxBody(body, headerOffset, this.maxPaxRecords);
        break;
      case 0x67:
        parsePaxBody(body, headerOffset, this.maxPaxRecords); // Go parses it (and may fail) before returning the entry
        throw new ZtocError('unsupported-tar-entry', `unsupported tar entry type 'g' (PAX global header) at offset ${headerOffset}`);
      case 0x4c:
        this.gnuLongName = cString(body, 0, body.length);
        break;
      default:
        this.gnuLongLink = cString(body, 0, body.length);
    }
    this.startSkip(this.position, this.position + blockPadding(body.length)); // body read, padding left
  }

  private onEntryHeader(header: RawHeader, headerOffset: number): void {
    const pax = this.paxRecords;
    this.paxRecords = undefined;
    let modTime: GoTime = { seconds: header.mtime, nanos: 0 };
    if (pax) modTime = mergePax(header, pax, headerOffset) ?? modTime;
    if (this.gnuLongName.length > 0) header.name = this.gnuLongName;
    if (this.gnuLongLink.length > 0) header.linkname = this.gnuLongLink;
    this.gnuLongName = EMPTY;
    this.gnuLongLink = EMPTY;

    let typeflag = header.typeflag;
    if (typeflag === 0) {
      // Legacy archives mark directories only by a trailing slash.
      typeflag = header.name.length > 0 && header.name[header.name.length - 1] === 0x2f ? 0x35 : 0x30;
    }
    const headerOnly = isHeaderOnlyType(typeflag);
    if (!headerOnly && isNegative(header.size)) {
      throw new ZtocError('bad-tar', `negative size for ${describeName(header.name)} at offset ${headerOffset}`);
    }
    if (typeflag === 0x53 || (pax !== undefined && isPaxSparse(pax))) {
      throw new ZtocError(
        'unsupported-tar-entry',
        `unsupported GNU sparse file ${describeName(header.name)} (tar header at offset ${headerOffset})`,
      );
    }
    const type = ENTRY_TYPES.get(typeflag);
    if (type === undefined) {
      throw new ZtocError(
        'unsupported-tar-entry',
        `unsupported tar entry type ${typeName(typeflag)} for ${describeName(header.name)} at offset ${headerOffset}`,
      );
    }

    const size = safeNumber(header.size, 'size', headerOffset);
    const entry: FileMetadata = {
      name: header.name,
      type,
      uncompressedOffset: this.position,
      uncompressedSize: size,
      linkname: header.linkname,
      mode: safeNumber(header.mode, 'mode', headerOffset),
      uid: toUint32(header.uid),
      gid: toUint32(header.gid),
      uname: header.uname,
      gname: header.gname,
      modTime: formatGoTime(modTime.seconds, modTime.nanos),
      devmajor: safeNumber(header.devmajor, 'devmajor', headerOffset),
      devminor: safeNumber(header.devminor, 'devminor', headerOffset),
      xattrs: pax ? sortedRecords(pax) : NO_RECORDS,
    };
    this.skippedEntry = this.toc.length;
    this.toc.push(entry); // copies the bytes: the header fields may be views of the caller's chunk
    if (this.tocBytesAllowed) {
      const allowed = this.tocBytesAllowed();
      if (this.toc.estimatedBytes > allowed) {
        throw new ZtocError(
          'limit-exceeded',
          `the TOC would exceed ${allowed} bytes at entry ${this.toc.length} (offset ${headerOffset}): ` +
            `far larger than the layer (limit tocBytes)`,
          'tocBytes',
        );
      }
    }
    const dataSize = headerOnly ? 0 : size; // Go never reads data of header-only types
    this.startSkip(this.position + dataSize, this.position + dataSize + blockPadding(dataSize));
  }

  /** Go skips an entry's data and padding lazily at the start of the next Next(); so do we. */
  private startSkip(dataEnd: number, nextHeader: number): void {
    this.dataEnd = dataEnd;
    this.skipUntil = nextHeader;
    this.state = nextHeader === this.position ? READ_HEADER : SKIP;
  }
}
keepShape(new GoTarReader());

const ENTRY_TYPES: ReadonlyMap<number, EntryType> = new Map<number, EntryType>([
  [0x30, 'reg'],
  [0x31, 'hardlink'],
  [0x32, 'symlink'],
  [0x33, 'char'],
  [0x34, 'block'],
  [0x35, 'dir'],
  [0x36, 'fifo'],
]);

const TYPE_DESCRIPTIONS: ReadonlyMap<number, string> = new Map([
  [0x37, 'contiguous file'],
  [0x67, 'PAX global header'],
  [0x78, 'PAX extended header'],
  [0x4c, 'GNU long name'],
  [0x4b, 'GNU long link'],
  [0x53, 'GNU sparse file'],
  [0x44, 'GNU dump directory'],
  [0x4d, 'GNU multi-volume continuation'],
  [0x4e, 'old GNU long name'],
  [0x56, 'GNU volume header'],
]);

/** Go's blockPadding: bytes from the end of a data section to the next block boundary. */
function blockPadding(size: number): number {
  return (BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE;
}

/** Go's isHeaderOnlyType: types whose size field never covers a data section. */
function isHeaderOnlyType(typeflag: number): boolean {
  return typeflag >= 0x31 && typeflag <= 0x36;
}

function typeName(typeflag: number): string {
  const flag =
    typeflag >= 0x20 && typeflag < 0x7f && typeflag !== 0x27 && typeflag !== 0x5c
      ? String.fromCharCode(typeflag)
      : `\\x${typeflag.toString(16).padStart(2, '0')}`;
  const description = TYPE_DESCRIPTIONS.get(typeflag);
  return description ? `'${flag}' (${description})` : `'${flag}'`;
}

function describeName(name: Uint8Array): string {
  const text = new TextDecoder().decode(name);
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 120)}…` : text);
}

function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < BLOCK_SIZE; i++) if (block[i] !== 0) return false;
  return true;
}

function isNegative(value: number | bigint): boolean {
  return value < 0;
}

/** int64 fields that land in the zTOC as JS numbers must be exact. */
function safeNumber(value: number | bigint, field: string, headerOffset: number): number {
  if (typeof value === 'number') return value;
  throw new ZtocError(
    'limit-exceeded',
    `tar header at offset ${headerOffset} has ${field} ${value}, beyond the exact range of a JS number`,
  );
}

/** Go's int uid/gid are serialized as uint32 (truncated). */
function toUint32(value: number | bigint): number {
  return typeof value === 'bigint' ? Number(BigInt.asUintN(32, value)) : value >>> 0;
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}

/** Go's parser.parseString: bytes up to the first NUL (a copy, so the block can be reused). */
function cString(bytes: Uint8Array, start: number, length: number): Uint8Array {
  const end = start + length;
  let i = start;
  while (i < end && bytes[i] !== 0) i++;
  return i === start ? EMPTY : copyBytes(bytes, start, i);
}

/** Go's parser.parseString without a copy: the header's fields are copied when the entry is stored. */
function cStringView(bytes: Uint8Array, start: number, length: number): Uint8Array {
  const end = start + length;
  let i = start;
  while (i < end && bytes[i] !== 0) i++;
  return i === start ? EMPTY : bytes.subarray(start, i);
}

// PAX values and GNU long names are copied into shared slabs: one ArrayBuffer per name would cost ~200 bytes of
// bookkeeping each, which dominates memory on layers with hundreds of thousands of entries.
const SLAB_SIZE = 256 * 1024;
let slab = new Uint8Array(SLAB_SIZE);
let slabUsed = 0;

/** A real copy (`Buffer#slice` would return a view of memory the caller is about to reuse). */
function copyBytes(bytes: Uint8Array, start: number, end: number): Uint8Array {
  const length = end - start;
  if (length > SLAB_SIZE / 8) return Uint8Array.prototype.slice.call(bytes, start, end);
  if (slabUsed + length > SLAB_SIZE) {
    slab = new Uint8Array(SLAB_SIZE);
    slabUsed = 0;
  }
  const copy = slab.subarray(slabUsed, slabUsed + length);
  copy.set(bytes.subarray(start, end));
  slabUsed += length;
  return copy;
}

function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function matches(block: Uint8Array, offset: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (block[offset + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** Go's getFormat; undefined where Go returns FormatUnknown (bad checksum). */
function signedChecksum(block: Uint8Array, unsigned: number): number {
  let high = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) if (i < 148 || i >= 156) high += block[i]! >> 7;
  return unsigned - 256 * high;
}

function detectFormat(block: Uint8Array): TarFormat | undefined {
  const stored = parseOctal(block, 148, 8);
  if (stored === undefined) return undefined;
  // This runs for every header of multi-GB layers: one plain pass for the unsigned sum (the checksum
  // field counts as eight spaces); the signed sum, which differs by 256 for every byte >= 0x80, is only
  // worked out when the unsigned one does not match (old Sun tar wrote signed sums).
  let unsigned = 0;
  for (let i = 0; i < 148; i++) unsigned += block[i]!;
  for (let i = 156; i < BLOCK_SIZE; i++) unsigned += block[i]!;
  unsigned += 8 * 0x20;
  if (stored !== unsigned && stored !== signedChecksum(block, unsigned)) return undefined;
  if (matches(block, 257, 'ustar\0')) return matches(block, 508, 'tar\0') ? 'star' : 'ustar';
  if (matches(block, 257, 'ustar ') && matches(block, 263, ' \0')) return 'gnu';
  return 'v7';
}

/** Go's parseOctal: undefined where Go sets ErrHeader. Fields are at most 12 octal digits (exact). */
function parseOctal(block: Uint8Array, start: number, length: number): number | undefined {
  let from = start;
  let to = start + length;
  while (from < to && (block[from] === 0x20 || block[from] === 0)) from++;
  while (to > from && (block[to - 1] === 0x20 || block[to - 1] === 0)) to--;
  if (from === to) return 0;
  let value = 0;
  for (let i = from; i < to && block[i] !== 0; i++) {
    const digit = block[i]! - 0x30;
    if (digit < 0 || digit > 7) return undefined;
    value = value * 8 + digit;
  }
  return value;
}

/** Go's parseNumeric: base-256 two's complement when the top bit is set, else octal. */
function parseNumeric(block: Uint8Array, start: number, length: number): number | bigint | undefined {
  if ((block[start]! & 0x80) === 0) return parseOctal(block, start, length);
  const invert = (block[start]! & 0x40) !== 0 ? 0xff : 0;
  let x = 0n;
  for (let i = 0; i < length; i++) {
    let c = block[start + i]! ^ invert;
    if (i === 0) c &= 0x7f;
    if (x >> 56n !== 0n) return undefined; // int64 overflow
    x = (x << 8n) | BigInt(c);
  }
  if (x >> 63n !== 0n) return undefined;
  return narrow(invert ? ~x : x);
}

/** int64 values stay bigint only where a JS number would not hold them exactly. */
function narrow(value: bigint): number | bigint {
  return value >= MIN_SAFE && value <= MAX_SAFE ? Number(value) : value;
}

const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Go's readHeader for one non-zero block. */
function parseHeader(block: Uint8Array, headerOffset: number): RawHeader {
  const format = detectFormat(block);
  if (format === undefined) {
    throw new ZtocError('bad-tar', `invalid tar header at offset ${headerOffset} (checksum mismatch)`);
  }
  let bad: string | undefined;
  const numeric = (field: string, start: number, length: number): number | bigint => {
    const value = parseNumeric(block, start, length);
    if (value === undefined) {
      bad ??= field;
      return 0;
    }
    return value;
  };
  const header: RawHeader = {
    typeflag: block[156]!,
    name: cStringView(block, 0, 100),
    linkname: cStringView(block, 157, 100),
    size: numeric('size', 124, 12),
    mode: numeric('mode', 100, 8),
    uid: numeric('uid', 108, 8),
    gid: numeric('gid', 116, 8),
    mtime: numeric('mtime', 136, 12),
    uname: EMPTY,
    gname: EMPTY,
    devmajor: 0,
    devminor: 0,
  };
  if (format !== 'v7') {
    header.uname = cStringView(block, 265, 32);
    header.gname = cStringView(block, 297, 32);
    header.devmajor = numeric('devmajor', 329, 8);
    header.devminor = numeric('devminor', 337, 8);
    let prefix: Uint8Array = EMPTY;
    if (format === 'ustar') {
      prefix = cStringView(block, 345, 155);
    } else if (format === 'star') {
      prefix = cStringView(block, 345, 131);
      numeric('atime', 476, 12);
      numeric('ctime', 488, 12);
    } else if (!gnuTimesParse(block)) {
      // Pre-Go-1.8 writers put a USTAR prefix into GNU headers; Go falls back to it when the
      // atime/ctime fields do not parse and the prefix is plain ASCII.
      const candidate = cStringView(block, 345, 155);
      if (candidate.every((c) => c < 0x80)) prefix = candidate;
    }
    if (prefix.length > 0) header.name = concatBytes(prefix, SLASH, header.name);
  }
  if (bad !== undefined) {
    throw new ZtocError('bad-tar', `invalid ${bad} field in tar header at offset ${headerOffset}`);
  }
  return header;
}

const SLASH = new Uint8Array([0x2f]);

function gnuTimesParse(block: Uint8Array): boolean {
  for (const start of [345, 357]) {
    if (block[start] !== 0 && parseNumeric(block, start, 12) === undefined) return false;
  }
  return true;
}

/** Go's strconv.ParseInt(s, 10, 64); undefined on syntax or range error. */
function parseGoInt64(text: string): bigint | undefined {
  if (!/^[+-]?[0-9]+$/.test(text)) return undefined;
  const value = BigInt(text);
  return value >= -(1n << 63n) && value < 1n << 63n ? value : undefined;
}

function indexOfByte(bytes: Uint8Array, byte: number, from: number, to: number): number {
  const i = bytes.subarray(from, to).indexOf(byte);
  return i < 0 ? -1 : from + i;
}

const SPARSE_OFFSET = 'GNU.sparse.offset';
const SPARSE_NUMBYTES = 'GNU.sparse.numbytes';
const SPARSE_MAP = 'GNU.sparse.map';
const NUL_FREE_VALUE_KEYS = new Set(['path', 'linkpath', 'uname', 'gname']);

/** Go's parsePAX + parsePAXRecord: records `"%d %s=%s\n"`, with GNU sparse 0.0 pairs collapsed. */
function parsePaxBody(body: Uint8Array, headerOffset: number, maxRecords: number): PaxRecords {
  const bad = (why: string): ZtocError => new ZtocError('bad-tar', `invalid PAX record in the header at offset ${headerOffset}: ${why}`);
  const records: PaxRecords = new Map();
  const sparseMap: Uint8Array[] = [];
  let at = 0;
  for (let count = 1; at < body.length; count++) {
    if (count > maxRecords) {
      throw new ZtocError(
        'limit-exceeded',
        `PAX header at offset ${headerOffset} has more than ${maxRecords} records (limit paxRecordsPerEntry)`,
        'paxRecordsPerEntry',
      );
    }
    const space = indexOfByte(body, 0x20, at, body.length);
    if (space < 0) throw bad('no length field');
    const declared = parseGoInt64(latin1(body.subarray(at, space)));
    if (declared === undefined || declared < 5n || declared > BigInt(body.length - at)) {
      throw bad('bad length');
    }
    const recordEnd = at + Number(declared) - 1; // index of the closing newline
    if (recordEnd <= space || body[recordEnd] !== 0x0a) throw bad('record does not end with a newline');
    const equals = indexOfByte(body, 0x3d, space + 1, recordEnd);
    if (equals < 0) throw bad('no "=" in record');
    const key = copyBytes(body, space + 1, equals);
    const value = copyBytes(body, equals + 1, recordEnd);
    const keyText = latin1(key);
    if (key.length === 0) throw bad('empty key');
    if (NUL_FREE_VALUE_KEYS.has(keyText) ? value.includes(0) : key.includes(0)) throw bad('NUL byte');
    at = recordEnd + 1;

    if (keyText === SPARSE_OFFSET || keyText === SPARSE_NUMBYTES) {
      const expected = sparseMap.length % 2 === 0 ? SPARSE_OFFSET : SPARSE_NUMBYTES;
      if (keyText !== expected || value.includes(0x2c)) throw bad('malformed GNU sparse 0.0 map');
      sparseMap.push(value);
    } else {
      records.set(keyText, { key, value });
    }
  }
  if (sparseMap.length > 0) {
    const joined = concatBytes(...sparseMap.flatMap((v, i) => (i === 0 ? [v] : [COMMA, v])));
    records.set(SPARSE_MAP, { key: new TextEncoder().encode(SPARSE_MAP), value: joined });
  }
  return records;
}

const COMMA = new Uint8Array([0x2c]);

/** Go's mergePAX: non-empty records override header fields. Returns the PAX mtime if any. */
function mergePax(header: RawHeader, records: PaxRecords, headerOffset: number): GoTime | undefined {
  let modTime: GoTime | undefined;
  for (const [key, { value }] of records) {
    if (value.length === 0) continue; // Go keeps the header value
    let ok = true;
    switch (key) {
      case 'path':
        header.name = value;
        break;
      case 'linkpath':
        header.linkname = value;
        break;
      case 'uname':
        header.uname = value;
        break;
      case 'gname':
        header.gname = value;
        break;
      case 'uid':
      case 'gid':
      case 'size': {
        const n = parseGoInt64(latin1(value));
        if (n === undefined) ok = false;
        else header[key] = narrow(n);
        break;
      }
      case 'mtime':
      case 'atime':
      case 'ctime': {
        const time = parsePaxTime(latin1(value));
        if (time === undefined) ok = false;
        else if (key === 'mtime') modTime = time;
        break;
      }
    }
    if (!ok) {
      throw new ZtocError(
        'bad-tar',
        `invalid PAX ${key} value ${JSON.stringify(latin1(value).slice(0, 40))} for the tar header at offset ${headerOffset}`,
      );
    }
  }
  return modTime;
}

/** Go's parsePAXTime: `%d[.%d]`, fraction right-padded/truncated to 9 digits, sign applied to it. */
function parsePaxTime(text: string): GoTime | undefined {
  const dot = text.indexOf('.');
  const secondsText = dot < 0 ? text : text.slice(0, dot);
  const seconds = parseGoInt64(secondsText);
  if (seconds === undefined) return undefined;
  const fraction = dot < 0 ? '' : text.slice(dot + 1);
  if (fraction.length === 0) return { seconds, nanos: 0 };
  if (!/^[0-9]+$/.test(fraction)) return undefined;
  const nanos = Number(fraction.length < 9 ? fraction.padEnd(9, '0') : fraction.slice(0, 9));
  return { seconds, nanos: secondsText.startsWith('-') ? -nanos : nanos };
}

/** Go's readGNUSparsePAXHeaders detection: which PAX records make Go read the entry as sparse. */
function isPaxSparse(records: PaxRecords): boolean {
  const text = (key: string): string => {
    const record = records.get(key);
    return record ? latin1(record.value) : '';
  };
  const major = text('GNU.sparse.major');
  const minor = text('GNU.sparse.minor');
  if (major === '0' && (minor === '0' || minor === '1')) return true;
  if (major === '1' && minor === '0') return true;
  if (major !== '' || minor !== '') return false; // unknown version: Go reads a plain file
  return text(SPARSE_MAP) !== '';
}

function sortedRecords(records: PaxRecords): PaxRecord[] {
  return [...records.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, record]) => record);
}

// Seconds of 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z: Go's MarshalText fails outside.
const FIRST_FORMATTABLE_SECOND = -62167219200n;
const END_FORMATTABLE_SECOND = 253402300800n;

/**
 * Go's `time.Unix(seconds, nanos).UTC().MarshalText()` (RFC 3339 with trimmed nanoseconds), or '' when Go
 * fails to marshal (year outside 0..9999), as upstream writes then. `seconds` must be an integer.
 */
// Entries of a layer share mtimes, though not always consecutively (a package's files interleave with
// directories): whole-second times, the usual kind, are remembered by their second.
const wholeSecondTimes = new Map<number, string>();
const MAX_REMEMBERED_TIMES = 1 << 16;
let lastTime: { seconds: number | bigint; nanos: number; text: string } = { seconds: 0, nanos: -1, text: '' };

export function formatGoTime(seconds: number | bigint, nanos: number): string {
  if (seconds === lastTime.seconds && nanos === lastTime.nanos) return lastTime.text;
  let text: string | undefined;
  if (nanos === 0 && typeof seconds === 'number') {
    text = wholeSecondTimes.get(seconds);
    if (text === undefined) {
      if (wholeSecondTimes.size >= MAX_REMEMBERED_TIMES) wholeSecondTimes.clear();
      text = formatGoTimeUncached(seconds, 0);
      wholeSecondTimes.set(seconds, text);
    }
  } else {
    text = formatGoTimeUncached(seconds, nanos);
  }
  lastTime = { seconds, nanos, text };
  return text;
}

function formatGoTimeUncached(seconds: number | bigint, nanos: number): string {
  let sec = typeof seconds === 'bigint' ? seconds : BigInt(seconds);
  let ns = nanos;
  if (ns < 0 || ns >= 1e9) {
    const carry = Math.floor(ns / 1e9);
    sec += BigInt(carry);
    ns -= carry * 1e9;
  }
  if (sec < FIRST_FORMATTABLE_SECOND || sec >= END_FORMATTABLE_SECOND) return '';
  const iso = new Date(Number(sec) * 1000).toISOString(); // YYYY-MM-DDTHH:mm:ss.sssZ for these years
  const fraction = ns === 0 ? '' : `.${String(ns).padStart(9, '0').replace(/0+$/, '')}`;
  return `${iso.slice(0, 19)}${fraction}Z`;
}
