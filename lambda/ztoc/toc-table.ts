// The TOC as the builder keeps it: columns of typed arrays in fixed-size blocks plus byte slabs for the
// names, instead of one object (and one Uint8Array view per name) per entry. A layer with 66,690 entries
// took ~19 MB of V8 heap as objects, most of it kept alive (and copied by the GC) until serialization;
// as columns it takes ~6 MB outside the heap. Entries are materialized only when someone reads them.
import { keepShape } from './shapes.ts';
import type { EntryType, FileMetadata, PaxRecord } from './types.ts';

/** Read access to a TOC: an array of entries satisfies it, and so does a TocTable. */
export interface TocEntries {
  readonly length: number;
  at(index: number): FileMetadata | undefined;
}

const TYPES: readonly EntryType[] = ['reg', 'dir', 'symlink', 'hardlink', 'char', 'block', 'fifo'];
const TYPE_CODE: Readonly<Record<EntryType, number>> = { reg: 0, dir: 1, symlink: 2, hardlink: 3, char: 4, block: 5, fifo: 6 };

const BLOCK_SHIFT = 12;
const BLOCK_ENTRIES = 1 << BLOCK_SHIFT; // entries per column block
const BLOCK_MASK = BLOCK_ENTRIES - 1;
const SLAB_SIZE = 1 << 20; // name bytes per slab
const NUMBERS = 5; // Float64 columns
const INDEXES = 12; // Uint32 columns

// Uint32 columns, by position.
const UID = 0;
const GID = 1;
const UNAME = 2;
const GNAME = 3;
const MOD_TIME = 4;
const XATTRS = 5; // index + 1 into xattrLists, 0 for none
const NAME_SLAB = 6; // then the name's offset in its slab (7) and its length (8): see storeBytes
const LINK_SLAB = 9; // then 10 and 11, likewise

/** One block of columns: NUMBERS Float64 columns, INDEXES Uint32 columns and the type codes. */
class ColumnBlock {
  readonly numbers: Float64Array; // offset, size, mode, devmajor, devminor, column-major
  readonly indexes: Uint32Array;
  readonly types: Uint8Array;

  /** `entries` is BLOCK_ENTRIES for real blocks (the accessors assume it); 0 makes a shape anchor. */
  constructor(entries = BLOCK_ENTRIES) {
    const buffer = new ArrayBuffer(entries * (NUMBERS * 8 + INDEXES * 4 + 1));
    this.numbers = new Float64Array(buffer, 0, entries * NUMBERS);
    this.indexes = new Uint32Array(buffer, entries * NUMBERS * 8, entries * INDEXES);
    this.types = new Uint8Array(buffer, entries * (NUMBERS * 8 + INDEXES * 4), entries);
  }
}
keepShape(new ColumnBlock(0));

const EMPTY = new Uint8Array(0);

function emptyEntry(): FileMetadata {
  return {
    name: EMPTY,
    type: 'reg',
    uncompressedOffset: 0,
    uncompressedSize: 0,
    linkname: EMPTY,
    mode: 0,
    uid: 0,
    gid: 0,
    uname: EMPTY,
    gname: EMPTY,
    modTime: '',
    devmajor: 0,
    devminor: 0,
    xattrs: NO_RECORDS,
  };
}

/** Byte-for-byte equality (a plain loop: it runs twice per entry for the owner names). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
const NO_RECORDS: PaxRecord[] = [];

/** Serialized bytes of one entry besides its strings (table, vtable share, string headers, padding). */
export const TOC_ENTRY_BYTES = 160;

function packRecords(records: readonly PaxRecord[]): Uint8Array {
  let size = 0;
  for (const r of records) size += 8 + r.key.length + r.value.length;
  const packed = new Uint8Array(size);
  const view = new DataView(packed.buffer);
  let at = 0;
  for (const r of records) {
    view.setUint32(at, r.key.length, true);
    view.setUint32(at + 4, r.value.length, true);
    packed.set(r.key, at + 8);
    packed.set(r.value, at + 8 + r.key.length);
    at += 8 + r.key.length + r.value.length;
  }
  return packed;
}

/** The records of `packRecords`, as views into `packed`. */
function unpackRecords(packed: Uint8Array): PaxRecord[] {
  const view = new DataView(packed.buffer, packed.byteOffset, packed.length);
  const records: PaxRecord[] = [];
  for (let at = 0; at < packed.length; ) {
    const keyLength = view.getUint32(at, true);
    const valueLength = view.getUint32(at + 4, true);
    const key = packed.subarray(at + 8, at + 8 + keyLength);
    records.push({ key, value: packed.subarray(at + 8 + keyLength, at + 8 + keyLength + valueLength) });
    at += 8 + keyLength + valueLength;
  }
  return records;
}

export class TocTable implements TocEntries {
  private count = 0;
  private readonly blocks: ColumnBlock[] = [];
  private readonly slabs: Uint8Array[] = [];
  private slabUsed = SLAB_SIZE; // forces a slab on the first name
  // Few distinct owner names and mod times per layer: each is stored once.
  private readonly owners: Uint8Array[] = [EMPTY];
  private readonly ownerIndex = new Map<string, number>([['', 0]]);
  private readonly times: string[] = [];
  private readonly timeIndex = new Map<string, number>();
  private lastTime: string | undefined;
  private lastTimeIndex = -1;
  // An entry's PAX records packed in one array (key length, value length as uint32 LE, key, value, ...):
  // a hostile layer can carry millions of records, and one object plus two arrays each cost ~300 bytes.
  private readonly xattrLists: Uint8Array[] = [];
  private stringBytes = 0;

  get length(): number {
    return this.count;
  }

  /** Appends an entry; its byte fields are copied, so the caller may reuse their memory. */
  push(entry: FileMetadata): void {
    const i = this.count & BLOCK_MASK;
    if (i === 0) this.blocks.push(new ColumnBlock());
    const block = this.blocks[this.blocks.length - 1]!;
    const n = block.numbers;
    n[i] = entry.uncompressedOffset;
    n[BLOCK_ENTRIES + i] = entry.uncompressedSize;
    n[2 * BLOCK_ENTRIES + i] = entry.mode;
    n[3 * BLOCK_ENTRIES + i] = entry.devmajor;
    n[4 * BLOCK_ENTRIES + i] = entry.devminor;
    const x = block.indexes;
    x[UID * BLOCK_ENTRIES + i] = entry.uid;
    x[GID * BLOCK_ENTRIES + i] = entry.gid;
    x[UNAME * BLOCK_ENTRIES + i] = this.owner(entry.uname);
    x[GNAME * BLOCK_ENTRIES + i] = this.owner(entry.gname);
    x[MOD_TIME * BLOCK_ENTRIES + i] = this.time(entry.modTime);
    x[XATTRS * BLOCK_ENTRIES + i] = entry.xattrs.length === 0 ? 0 : this.xattrLists.push(packRecords(entry.xattrs));
    this.storeBytes(x, NAME_SLAB * BLOCK_ENTRIES + i, entry.name);
    this.storeBytes(x, LINK_SLAB * BLOCK_ENTRIES + i, entry.linkname);
    block.types[i] = TYPE_CODE[entry.type];
    this.stringBytes +=
      entry.name.length + entry.linkname.length + entry.uname.length + entry.gname.length + entry.modTime.length + entry.type.length;
    for (const record of entry.xattrs) this.stringBytes += 32 + record.key.length + record.value.length;
    this.count++;
  }

  at(index: number): FileMetadata | undefined {
    if (index < 0) index += this.count;
    if (!(index >= 0 && index < this.count)) return undefined;
    return this.load(index, emptyEntry());
  }

  /**
   * Overwrites `into` with entry `index` (which must exist) and returns it: a serializer walking every
   * entry reuses one object instead of making one per entry.
   */
  load(index: number, into: FileMetadata): FileMetadata {
    const block = this.blocks[index >>> BLOCK_SHIFT]!;
    const i = index & BLOCK_MASK;
    const n = block.numbers;
    const x = block.indexes;
    const xattrs = x[XATTRS * BLOCK_ENTRIES + i]!;
    into.name = this.loadBytes(x, NAME_SLAB * BLOCK_ENTRIES + i);
    into.type = TYPES[block.types[i]!]!;
    into.uncompressedOffset = n[i]!;
    into.uncompressedSize = n[BLOCK_ENTRIES + i]!;
    into.linkname = this.loadBytes(x, LINK_SLAB * BLOCK_ENTRIES + i);
    into.mode = n[2 * BLOCK_ENTRIES + i]!;
    into.uid = x[UID * BLOCK_ENTRIES + i]!;
    into.gid = x[GID * BLOCK_ENTRIES + i]!;
    into.uname = this.owners[x[UNAME * BLOCK_ENTRIES + i]!]!;
    into.gname = this.owners[x[GNAME * BLOCK_ENTRIES + i]!]!;
    into.modTime = this.times[x[MOD_TIME * BLOCK_ENTRIES + i]!]!;
    into.devmajor = n[3 * BLOCK_ENTRIES + i]!;
    into.devminor = n[4 * BLOCK_ENTRIES + i]!;
    into.xattrs = xattrs === 0 ? NO_RECORDS : unpackRecords(this.xattrLists[xattrs - 1]!);
    return into;
  }

  /** Every entry as an object (for callers that want the plain model). */
  toArray(): FileMetadata[] {
    return Array.from({ length: this.count }, (_, i) => this.at(i)!);
  }

  /** Bytes of all strings and xattr records, for sizing the serializer's buffer. */
  get totalStringBytes(): number {
    return this.stringBytes;
  }

  /** The serialized size of the TOC, estimated as the serializer sizes its buffer. */
  get estimatedBytes(): number {
    return TOC_ENTRY_BYTES * this.count + this.stringBytes;
  }

  private owner(bytes: Uint8Array): number {
    if (bytes.length === 0) return 0;
    // The few owners of a layer are compared byte by byte before any string is made for the map.
    if (this.owners.length <= 8) {
      for (let k = 1; k < this.owners.length; k++) if (sameBytes(this.owners[k]!, bytes)) return k;
    }
    const key = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
    let index = this.ownerIndex.get(key);
    if (index === undefined) {
      index = this.owners.push(Uint8Array.prototype.slice.call(bytes)) - 1;
      this.ownerIndex.set(key, index);
    }
    return index;
  }

  private time(text: string): number {
    if (text === this.lastTime) return this.lastTimeIndex; // runs of entries share a mod time
    let index = this.timeIndex.get(text);
    if (index === undefined) {
      index = this.times.push(text) - 1;
      this.timeIndex.set(text, index);
    }
    this.lastTime = text;
    this.lastTimeIndex = index;
    return index;
  }

  private storeBytes(x: Uint32Array, at: number, bytes: Uint8Array): void {
    const length = bytes.length;
    x[at + 2 * BLOCK_ENTRIES] = length;
    if (length === 0) return;
    if (this.slabUsed + length > SLAB_SIZE) {
      // A name longer than a slab (PAX allows up to 1 MiB) gets a slab of its own.
      this.slabs.push(new Uint8Array(Math.max(SLAB_SIZE, length)));
      this.slabUsed = 0;
    }
    const slab = this.slabs.length - 1;
    this.slabs[slab]!.set(bytes, this.slabUsed);
    x[at] = slab;
    x[at + BLOCK_ENTRIES] = this.slabUsed;
    this.slabUsed += length;
  }

  private loadBytes(x: Uint32Array, at: number): Uint8Array {
    const length = x[at + 2 * BLOCK_ENTRIES]!;
    if (length === 0) return EMPTY;
    const from = x[at + BLOCK_ENTRIES]!;
    return this.slabs[x[at]!]!.subarray(from, from + length);
  }
}

/**
 * Entry `i` of `toc` for a caller that is done with it before asking for the next: a TocTable reloads one
 * scratch object instead of making an object (and name views) per entry, as `at` must.
 */
export function entryReader(toc: TocEntries): (i: number) => FileMetadata {
  if (!(toc instanceof TocTable)) return (i) => toc.at(i)!;
  const scratch = emptyEntry();
  return (i) => toc.load(i, scratch);
}
keepShape(new TocTable());
