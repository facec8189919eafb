// zTOC FlatBuffers codec (docs/format.md §1, §3.3, §3.5). The serializer issues the npm `flatbuffers`
// builder calls in exactly upstream's order (§1.4), because the bytes — and so the zTOC digest — depend
// on that order. The reader is hand-written over `flatbuffers.ByteBuffer` with explicit bounds checks:
// ByteBuffer itself checks nothing, and a zTOC may come from an untrusted registry.

import * as flatbuffers from 'flatbuffers';
import { compressionForFbsCode, findCompression } from './compression/table.ts';
import { keepShape } from './shapes.ts';
import { entryReader, type TocEntries, TocTable } from './toc-table.ts';
import type { Checkpoint, EntryType, FileMetadata, PaxRecord, Ztoc } from './types.ts';
import { WINDOW_SIZE, ZtocError } from './types.ts';

// '' is upstream's zero-value FileMetadata (its own serializer golden, TestWriteZtoc, has two of them).
const ENTRY_TYPES: ReadonlySet<string> = new Set<string>(['reg', 'dir', 'symlink', 'hardlink', 'char', 'block', 'fifo', '']);

/** ztoc.fbs: `compression_algorithm : CompressionAlgorithm = Gzip` (each table entry has its enum value). */
const SCHEMA_DEFAULT_ALGORITHM = 1;

const CHECKPOINT_HEADER_SIZE = 12;
const CHECKPOINT_SIZE = 8 + 8 + 1 + WINDOW_SIZE;
const TAR_ZINFO_VERSION = 2;

function bad(message: string): never {
  throw new ZtocError('bad-ztoc', message);
}

function int64(value: number, field: string): bigint {
  if (!Number.isSafeInteger(value)) bad(`cannot serialize zTOC: ${field} is not a safe integer (${value})`);
  return BigInt(value);
}

function uint32(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) bad(`cannot serialize zTOC: ${field} is not a uint32 (${value})`);
  return value | 0;
}

function int32(value: number, field: string): number {
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff)
    bad(`cannot serialize zTOC: ${field} is not an int32 (${value})`);
  return value;
}

/** A plain, independent copy (Buffer#slice would return a view into the caller's buffer). */
function copyBytes(view: Uint8Array): Uint8Array {
  return new Uint8Array(view);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** A vector of table/string offsets, prepended last to first so element 0 comes first. */
function offsetVector(b: flatbuffers.Builder, offsets: number[]): number {
  b.startVector(4, offsets.length, 4);
  for (let i = offsets.length - 1; i >= 0; i--) b.addOffset(offsets[i]!);
  return b.endVector();
}

function writeXattrs(b: flatbuffers.Builder, xattrs: PaxRecord[]): number {
  const sorted = [...xattrs].sort((x, y) => compareBytes(x.key, y.key));
  const tables = sorted.map((record) => {
    const key = b.createString(record.key);
    const value = b.createString(record.value);
    b.startObject(2);
    b.addFieldOffset(0, key, 0);
    b.addFieldOffset(1, value, 0);
    return b.endObject();
  });
  return offsetVector(b, tables);
}

/**
 * UTF-8 bytes of the few distinct type and mod_time strings of a layer, encoded once: createString of a
 * JS string would encode (and allocate) it again for every entry. Same bytes in the buffer either way.
 */
class TextCache {
  private readonly encoder = new TextEncoder();
  private readonly cache = new Map<string, Uint8Array>();

  bytes(text: string): Uint8Array {
    let encoded = this.cache.get(text);
    if (!encoded) {
      if (this.cache.size >= 4096) this.cache.clear();
      encoded = this.encoder.encode(text);
      this.cache.set(text, encoded);
    }
    return encoded;
  }
}
keepShape(new TextCache());
const builderAnchor = new flatbuffers.Builder(1);
keepShape(builderAnchor);
keepShape(builderAnchor.dataBuffer());

function writeFileMetadata(b: flatbuffers.Builder, m: FileMetadata, text: TextCache): number {
  const name = b.createString(m.name);
  const type = b.createString(text.bytes(m.type));
  const linkname = b.createString(m.linkname);
  const uname = b.createString(m.uname);
  const gname = b.createString(m.gname);
  const modTime = b.createString(text.bytes(m.modTime));
  const xattrs = writeXattrs(b, m.xattrs);
  b.startObject(14);
  b.addFieldOffset(0, name, 0);
  b.addFieldOffset(1, type, 0);
  b.addFieldInt64(2, int64(m.uncompressedOffset, 'uncompressed_offset'), 0n);
  b.addFieldInt64(3, int64(m.uncompressedSize, 'uncompressed_size'), 0n);
  b.addFieldOffset(4, linkname, 0);
  b.addFieldInt64(5, int64(m.mode, 'mode'), 0n);
  b.addFieldInt32(6, uint32(m.uid, 'uid'), 0);
  b.addFieldInt32(7, uint32(m.gid, 'gid'), 0);
  b.addFieldOffset(8, uname, 0);
  b.addFieldOffset(9, gname, 0);
  b.addFieldOffset(10, modTime, 0);
  b.addFieldInt64(11, int64(m.devmajor, 'devmajor'), 0n);
  b.addFieldInt64(12, int64(m.devminor, 'devminor'), 0n);
  b.addFieldOffset(13, xattrs, 0);
  return b.endObject();
}

/** Serializes a zTOC exactly as upstream's `ztoc_marshaler.go` does (docs/format.md §1.4). */
/**
 * A zTOC to serialize; its checkpoint blob may be given as consecutive parts (see gzipCheckpointParts)
 * so that the windows are copied once, into the FlatBuffer, instead of first into a blob.
 */
export type ZtocToSerialize = Omit<Ztoc, 'checkpoints' | 'toc'> & { toc: TocEntries; checkpoints: Uint8Array | readonly Uint8Array[] };

export function serializeZtoc(z: ZtocToSerialize): Uint8Array {
  // Sized up front: the builder would otherwise double (and copy) its buffer up to twice the zTOC size,
  // which for checkpoint-heavy zTOCs is hundreds of MB. The initial size does not change the bytes.
  const b = new flatbuffers.Builder(estimateSize(z));
  const version = b.createString(z.version);
  const tool = b.createString(z.buildToolIdentifier);

  // Upstream walks the entries from last to first, then prepends the offsets, so entry 0 comes first.
  const entries: number[] = new Array<number>(z.toc.length);
  const text = new TextCache();
  const entryAt = entryReader(z.toc);
  for (let i = z.toc.length - 1; i >= 0; i--) entries[i] = writeFileMetadata(b, entryAt(i), text);
  const metadata = offsetVector(b, entries);
  b.startObject(1);
  b.addFieldOffset(0, metadata, 0);
  const toc = b.endObject();

  const checkpoints = byteVector(b, z.checkpoints);
  const spanDigests = offsetVector(
    b,
    z.spanDigests.map((d) => b.createString(d)),
  );
  b.startObject(4);
  b.addFieldInt32(1, int32(z.maxSpanId, 'max_span_id'), 0);
  b.addFieldOffset(2, spanDigests, 0);
  b.addFieldOffset(3, checkpoints, 0);
  const algorithm = findCompression(z.compressionAlgorithm);
  if (!algorithm) bad(`cannot serialize zTOC: unknown compression algorithm ${JSON.stringify(z.compressionAlgorithm)}`);
  b.addFieldInt8(0, algorithm.fbsCode, SCHEMA_DEFAULT_ALGORITHM);
  const compressionInfo = b.endObject();

  b.startObject(6);
  b.addFieldOffset(0, version, 0);
  b.addFieldOffset(1, tool, 0);
  b.addFieldOffset(4, toc, 0);
  b.addFieldInt64(2, int64(z.compressedArchiveSize, 'compressed_archive_size'), 0n);
  b.addFieldInt64(3, int64(z.uncompressedArchiveSize, 'uncompressed_archive_size'), 0n);
  b.addFieldOffset(5, compressionInfo, 0);
  b.finish(b.endObject());
  const bytes = b.asUint8Array();
  // A view is enough when the estimate was close; copy out of a mostly-empty buffer.
  return bytes.byteLength * 1.25 >= bytes.buffer.byteLength ? bytes : bytes.slice();
}

/** An upper bound of the serialized size (strings, tables, vtables and alignment per entry). */
/** Go's CreateByteVector, also from parts: the same builder steps, the bytes copied in part by part. */
function byteVector(b: flatbuffers.Builder, data: Uint8Array | readonly Uint8Array[]): number {
  if (data instanceof Uint8Array) return b.createByteVector(data);
  const total = byteLength(data);
  b.startVector(1, total, 1);
  const builder = b as unknown as { bb: flatbuffers.ByteBuffer; space: number };
  builder.space -= total;
  builder.bb.setPosition(builder.space);
  let at = builder.space;
  for (const part of data) {
    builder.bb.bytes().set(part, at);
    at += part.length;
  }
  return b.endVector();
}

function byteLength(data: Uint8Array | readonly Uint8Array[]): number {
  return data instanceof Uint8Array ? data.length : data.reduce((n, p) => n + p.length, 0);
}

function estimateSize(z: ZtocToSerialize): number {
  let size = 1024 + byteLength(z.checkpoints) + z.spanDigests.length * 96 + z.buildToolIdentifier.length;
  if (z.toc instanceof TocTable) return Math.min(size + z.toc.estimatedBytes, 2 ** 31 - 1);
  for (let i = 0; i < z.toc.length; i++) {
    const e = z.toc.at(i)!;
    size += 160 + e.name.length + e.linkname.length + e.uname.length + e.gname.length + e.modTime.length;
    for (const x of e.xattrs) size += 32 + x.key.length + x.value.length;
  }
  return Math.min(size, 2 ** 31 - 1);
}

/** A table located in the buffer, with its vtable already bounds-checked. */
interface TablePos {
  pos: number;
  vtable: number;
  vtableSize: number;
  what: string;
}

/** Bounds-checked FlatBuffers reading; every failure is a one-line ZtocError('bad-ztoc'). */
class CheckedReader {
  private readonly bb: flatbuffers.ByteBuffer;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(
    private readonly bytes: Uint8Array,
    private readonly kind: string,
  ) {
    this.bb = new flatbuffers.ByteBuffer(bytes);
  }

  private need(pos: number, length: number, what: string): void {
    if (pos < 0 || length < 0 || pos + length > this.bytes.length) {
      bad(`${this.kind} is malformed: ${what} at byte ${pos} runs past the end (${this.bytes.length} bytes)`);
    }
  }

  root(what: string): TablePos {
    this.need(0, 4, 'root offset');
    return this.table(this.bb.readUint32(0), what);
  }

  private table(pos: number, what: string): TablePos {
    this.need(pos, 4, `${what} table`);
    const vtable = pos - this.bb.readInt32(pos);
    this.need(vtable, 4, `${what} vtable`);
    const vtableSize = this.bb.readUint16(vtable);
    if (vtableSize < 4 || vtableSize % 2 !== 0) bad(`${this.kind} is malformed: ${what} vtable at byte ${vtable} has size ${vtableSize}`);
    this.need(vtable, vtableSize, `${what} vtable`);
    return { pos, vtable, vtableSize, what };
  }

  /** Absolute position of a field, or 0 when it is absent (default value). */
  private field(t: TablePos, slot: number, size: number, name: string): number {
    const entry = 4 + 2 * slot;
    if (entry >= t.vtableSize) return 0;
    const rel = this.bb.readUint16(t.vtable + entry);
    if (rel === 0) return 0;
    this.need(t.pos + rel, size, `${t.what}.${name}`);
    return t.pos + rel;
  }

  private indirect(t: TablePos, slot: number, name: string): number {
    const at = this.field(t, slot, 4, name);
    if (at === 0) return 0;
    const target = at + this.bb.readUint32(at);
    this.need(target, 4, `${t.what}.${name}`);
    return target;
  }

  int(t: TablePos, slot: number, name: string, size: 1 | 4, signed: boolean, dflt: number): number {
    const at = this.field(t, slot, size, name);
    if (at === 0) return dflt;
    if (size === 1) return signed ? this.bb.readInt8(at) : this.bb.readUint8(at);
    return signed ? this.bb.readInt32(at) : this.bb.readUint32(at);
  }

  int64(t: TablePos, slot: number, name: string): number {
    const at = this.field(t, slot, 8, name);
    if (at === 0) return 0;
    const value = this.bb.readInt64(at);
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      bad(`${this.kind} is malformed: ${t.what}.${name} = ${value} is beyond 2^53`);
    }
    return Number(value);
  }

  private bytesAt(pos: number, elementSize: number, what: string): Uint8Array {
    const length = this.bb.readUint32(pos);
    this.need(pos + 4, length * elementSize, what);
    return this.bytes.subarray(pos + 4, pos + 4 + length * elementSize);
  }

  /** Raw string bytes (copied); an absent string reads as empty, as in Go's generated code. */
  rawString(t: TablePos, slot: number, name: string): Uint8Array {
    const at = this.indirect(t, slot, name);
    return at === 0 ? new Uint8Array(0) : copyBytes(this.bytesAt(at, 1, `${t.what}.${name}`));
  }

  text(t: TablePos, slot: number, name: string): string {
    const raw = this.rawString(t, slot, name);
    try {
      return this.utf8.decode(raw);
    } catch {
      bad(`${this.kind} is malformed: ${t.what}.${name} is not valid UTF-8`);
    }
  }

  byteVector(t: TablePos, slot: number, name: string): Uint8Array {
    const at = this.indirect(t, slot, name);
    return at === 0 ? new Uint8Array(0) : copyBytes(this.bytesAt(at, 1, `${t.what}.${name}`));
  }

  /** Positions of the uoffset elements of a vector of tables or strings. */
  private offsetElements(t: TablePos, slot: number, name: string): number[] {
    const at = this.indirect(t, slot, name);
    if (at === 0) return [];
    const length = this.bb.readUint32(at);
    this.need(at + 4, length * 4, `${t.what}.${name}`);
    return Array.from({ length }, (_, i) => at + 4 + 4 * i);
  }

  /** The element count of a vector of tables or strings, its offsets bounds-checked but not followed. */
  vectorLength(t: TablePos, slot: number, name: string): number {
    const at = this.indirect(t, slot, name);
    if (at === 0) return 0;
    const length = this.bb.readUint32(at);
    this.need(at + 4, length * 4, `${t.what}.${name}`);
    return length;
  }

  tableVector(t: TablePos, slot: number, name: string, what: string): TablePos[] {
    return this.offsetElements(t, slot, name).map((el, i) => this.table(el + this.bb.readUint32(el), `${what}[${i}]`));
  }

  childTable(t: TablePos, slot: number, name: string): TablePos | null {
    const at = this.indirect(t, slot, name);
    return at === 0 ? null : this.table(at, name);
  }

  textVector(t: TablePos, slot: number, name: string): string[] {
    return this.offsetElements(t, slot, name).map((el, i) => {
      const target = el + this.bb.readUint32(el);
      this.need(target, 4, `${t.what}.${name}[${i}]`);
      const raw = this.bytesAt(target, 1, `${t.what}.${name}[${i}]`);
      try {
        return this.utf8.decode(raw);
      } catch {
        return bad(`${this.kind} is malformed: ${t.what}.${name}[${i}] is not valid UTF-8`);
      }
    });
  }
}

/** Runs a decoder so that anything unexpected still surfaces as a one-line ZtocError. */
function guarded<T>(kind: string, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    if (err instanceof ZtocError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    bad(`${kind} is malformed: ${message.split('\n')[0]}`);
  }
}

function readFileMetadata(r: CheckedReader, t: TablePos): FileMetadata {
  const type = r.text(t, 1, 'type');
  if (!ENTRY_TYPES.has(type)) bad(`zTOC is malformed: ${t.what} has unknown type ${JSON.stringify(type)}`);
  return {
    name: r.rawString(t, 0, 'name'),
    type: type as EntryType,
    uncompressedOffset: r.int64(t, 2, 'uncompressed_offset'),
    uncompressedSize: r.int64(t, 3, 'uncompressed_size'),
    linkname: r.rawString(t, 4, 'linkname'),
    mode: r.int64(t, 5, 'mode'),
    uid: r.int(t, 6, 'uid', 4, false, 0),
    gid: r.int(t, 7, 'gid', 4, false, 0),
    uname: r.rawString(t, 8, 'uname'),
    gname: r.rawString(t, 9, 'gname'),
    modTime: r.text(t, 10, 'mod_time'),
    devmajor: r.int64(t, 11, 'devmajor'),
    devminor: r.int64(t, 12, 'devminor'),
    xattrs: r
      .tableVector(t, 13, 'xattrs', `${t.what}.xattrs`)
      .map((x) => ({ key: r.rawString(x, 0, 'key'), value: r.rawString(x, 1, 'value') })),
  };
}

/** A zTOC without its TOC entries decoded: `tocEntries` is how many there are. */
export type ZtocHeader = Omit<Ztoc, 'toc'> & { tocEntries: number };

/** Parses a zTOC FlatBuffer; any malformed input gives ZtocError('bad-ztoc'). */
export function parseZtoc(bytes: Uint8Array): Ztoc {
  return guarded('zTOC', () => readZtoc(bytes, true));
}

/**
 * Everything of a zTOC but its TOC entries (only counted), for callers that need the sizes, settings and
 * checkpoints: decoding tens of thousands of entries is most of the cost of parseZtoc.
 */
export function parseZtocHeader(bytes: Uint8Array): ZtocHeader {
  return guarded('zTOC', () => readZtoc(bytes, false));
}

function readZtoc(bytes: Uint8Array, entries: true): Ztoc;
function readZtoc(bytes: Uint8Array, entries: false): ZtocHeader;
function readZtoc(bytes: Uint8Array, entries: boolean): Ztoc | ZtocHeader {
  const r = new CheckedReader(bytes, 'zTOC');
  const root = r.root('Ztoc');
  const toc = r.childTable(root, 4, 'toc');
  if (!toc) bad('zTOC is malformed: it has no toc table');
  const info = r.childTable(root, 5, 'compression_info');
  if (!info) bad('zTOC is malformed: it has no compression_info table');
  const code = r.int(info, 0, 'compression_algorithm', 1, true, SCHEMA_DEFAULT_ALGORITHM);
  const algorithm = compressionForFbsCode(code)?.name;
  if (!algorithm) bad(`zTOC is malformed: unexpected compression algorithm ${code}`);
  const header = {
    version: r.text(root, 0, 'version'),
    buildToolIdentifier: r.text(root, 1, 'build_tool_identifier'),
    compressedArchiveSize: r.int64(root, 2, 'compressed_archive_size'),
    uncompressedArchiveSize: r.int64(root, 3, 'uncompressed_archive_size'),
  };
  const rest = {
    compressionAlgorithm: algorithm,
    maxSpanId: r.int(info, 1, 'max_span_id', 4, true, 0),
    spanDigests: r.textVector(info, 2, 'span_digests'),
    checkpoints: r.byteVector(info, 3, 'checkpoints'),
  };
  if (!entries) return { ...header, ...rest, tocEntries: r.vectorLength(toc, 0, 'metadata') };
  return { ...header, toc: r.tableVector(toc, 0, 'metadata', 'metadata').map((m) => readFileMetadata(r, m)), ...rest };
}

/** The gzip checkpoint blob ("v2": every checkpoint serialized), docs/format.md §3.3. */
/**
 * The gzip checkpoint blob (spec 3.3) as consecutive parts: the 12-byte header, then per checkpoint its
 * 17-byte record and its window (the checkpoint's own array, not copied). Every part owns its buffer.
 */
export function gzipCheckpointParts(spanSize: number, cps: readonly Checkpoint[]): Uint8Array[] {
  const header = new Uint8Array(CHECKPOINT_HEADER_SIZE);
  const headerView = new DataView(header.buffer);
  headerView.setInt32(0, int32(cps.length, 'checkpoint count'), true);
  headerView.setBigInt64(4, int64(spanSize, 'span size'), true);
  const parts: Uint8Array[] = [header];
  cps.forEach((cp, k) => {
    if (!Number.isInteger(cp.bits) || cp.bits < 0 || cp.bits > 7) bad(`cannot serialize checkpoint ${k}: bits = ${cp.bits}`);
    if (cp.window.length !== WINDOW_SIZE) bad(`cannot serialize checkpoint ${k}: window is ${cp.window.length} bytes, not ${WINDOW_SIZE}`);
    const record = new Uint8Array(CHECKPOINT_SIZE - WINDOW_SIZE);
    const view = new DataView(record.buffer);
    view.setBigInt64(0, int64(cp.in, `checkpoint ${k} in`), true);
    view.setBigInt64(8, int64(cp.out, `checkpoint ${k} out`), true);
    record[16] = cp.bits;
    parts.push(record, cp.window);
  });
  return parts;
}

/** The `out` offsets of a gzip checkpoint blob we built (all checkpoints stored), without copying windows. */
export function gzipCheckpointOutputs(blob: Uint8Array): number[] {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const count = (blob.length - CHECKPOINT_HEADER_SIZE) / CHECKPOINT_SIZE;
  return Array.from({ length: count }, (_, k) => Number(view.getBigInt64(CHECKPOINT_HEADER_SIZE + k * CHECKPOINT_SIZE + 8, true)));
}

export function encodeGzipCheckpoints(spanSize: number, cps: readonly Checkpoint[]): Uint8Array {
  const parts = gzipCheckpointParts(spanSize, cps);
  const blob = new Uint8Array(byteLength(parts));
  let at = 0;
  for (const part of parts) {
    blob.set(part, at);
    at += part.length;
  }
  return blob;
}

function safeInt64(view: DataView, at: number, what: string): number {
  const value = view.getBigInt64(at, true);
  if (value < 0n || value > BigInt(Number.MAX_SAFE_INTEGER)) bad(`gzip checkpoint blob is malformed: ${what} = ${value}`);
  return Number(value);
}

/** Decodes a gzip checkpoint blob; accepts "v2" and "v1" (checkpoint 0 omitted), like upstream's blob_to_zinfo. */
export function decodeGzipCheckpoints(blob: Uint8Array): { spanSize: number; checkpoints: Checkpoint[] } {
  if (blob.length < CHECKPOINT_HEADER_SIZE) bad(`gzip checkpoint blob is malformed: ${blob.length} bytes is shorter than its header`);
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const count = view.getInt32(0, true);
  const spanSize = safeInt64(view, 4, 'span size');
  const stored = (blob.length - CHECKPOINT_HEADER_SIZE) / CHECKPOINT_SIZE;
  if (count < 0 || !(stored === count || (count >= 1 && stored === count - 1))) {
    bad(`gzip checkpoint blob is malformed: ${blob.length} bytes do not hold ${count} checkpoints`);
  }
  const checkpoints: Checkpoint[] = [];
  if (stored === count - 1) checkpoints.push({ in: 10, out: 0, bits: 0, window: new Uint8Array(WINDOW_SIZE) });
  for (let k = 0; k < stored; k++) {
    const at = CHECKPOINT_HEADER_SIZE + k * CHECKPOINT_SIZE;
    const bits = blob[at + 16]!;
    if (bits > 7) bad(`gzip checkpoint blob is malformed: checkpoint ${checkpoints.length} has bits = ${bits}`);
    checkpoints.push({
      in: safeInt64(view, at, `checkpoint ${checkpoints.length} in`),
      out: safeInt64(view, at + 8, `checkpoint ${checkpoints.length} out`),
      bits,
      window: copyBytes(blob.subarray(at + 17, at + 17 + WINDOW_SIZE)),
    });
  }
  return { spanSize, checkpoints };
}

/** The nested `TarZinfo` FlatBuffer used as `checkpoints` for uncompressed layers (§3.5). */
export function encodeTarZinfo(spanSize: number, size: number): Uint8Array {
  const b = new flatbuffers.Builder(64);
  b.startObject(3);
  b.addFieldInt32(0, TAR_ZINFO_VERSION, 0);
  b.addFieldInt64(1, int64(spanSize, 'span size'), 0n);
  b.addFieldInt64(2, int64(size, 'size'), 0n);
  b.finish(b.endObject());
  return b.asUint8Array().slice();
}

export function decodeTarZinfo(blob: Uint8Array): { version: number; spanSize: number; size: number } {
  return guarded('TarZinfo', () => {
    const r = new CheckedReader(blob, 'TarZinfo');
    const root = r.root('TarZinfo');
    return { version: r.int(root, 0, 'version', 4, true, 0), spanSize: r.int64(root, 1, 'span_size'), size: r.int64(root, 2, 'size') };
  });
}
