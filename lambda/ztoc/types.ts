// The in-memory model of a zTOC, mirroring soci-snapshotter's ztoc.fbs (see docs/format.md §1).
// Names, link names and PAX values are kept as raw bytes: Go's tar reader does no normalisation or
// decoding, and binary xattr values must survive untouched.
import { VERSION } from '../version.ts';

export type EntryType = 'reg' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

/** A name in the compression table (`ztoc/compression/table.ts`): `gzip` or `uncompressed` today, as upstream writes them. */
export type CompressionAlgorithm = string;

/** One raw PAX record of an entry's local extended header (all of them, not only xattrs). */
export interface PaxRecord {
  key: Uint8Array;
  value: Uint8Array;
}

/** One tar entry as Go's archive/tar reports it; field names follow ztoc.fbs FileMetadata. */
export interface FileMetadata {
  name: Uint8Array;
  type: EntryType;
  /** Offset of the entry's first data byte in the uncompressed tar stream. */
  uncompressedOffset: number;
  uncompressedSize: number;
  linkname: Uint8Array;
  mode: number;
  uid: number;
  gid: number;
  uname: Uint8Array;
  gname: Uint8Array;
  /** RFC 3339 with trimmed nanoseconds, UTC (`2024-01-01T00:00:00Z`); empty when Go cannot format it. */
  modTime: string;
  devmajor: number;
  devminor: number;
  /** Sorted by key (byte order), as upstream serializes them. */
  xattrs: PaxRecord[];
}

/** A complete zTOC: everything that is serialized into the FlatBuffer. */
export interface Ztoc {
  version: string;
  buildToolIdentifier: string;
  compressedArchiveSize: number;
  uncompressedArchiveSize: number;
  toc: FileMetadata[];
  compressionAlgorithm: CompressionAlgorithm;
  maxSpanId: number;
  spanDigests: string[];
  /** Opaque zinfo blob: the gzip checkpoint blob or a TarZinfo FlatBuffer. */
  checkpoints: Uint8Array;
}

/** One gzip checkpoint (zran access point). */
export interface Checkpoint {
  /** Compressed offset of the first full byte of the span (absolute, in the layer file). */
  in: number;
  /** Uncompressed offset where the span starts. */
  out: number;
  /** Number of unused bits (0..7) in the byte before `in` that belong to the span. */
  bits: number;
  /** The 32 KiB of uncompressed data preceding `out`, zero-filled at the front when out < 32 KiB. */
  window: Uint8Array;
}

export const ZTOC_VERSION = '0.9';
export const UPSTREAM_BUILD_TOOL_ID = 'AWS SOCI CLI v0.2';
/** What this tool writes into zTOCs unless told otherwise. */
export const DEFAULT_BUILD_TOOL_ID = `soci-indexer ${VERSION}`;
export const DEFAULT_SPAN_SIZE = 4 * 1024 * 1024;
export const WINDOW_SIZE = 32768;

/**
 * A layer that cannot be indexed because of what it is (bad or unsupported input), as opposed to an
 * I/O failure. `code` is stable for programs; `message` is one line for people.
 */
export class ZtocError extends Error {
  constructor(
    readonly code:
      | 'unsupported-compression'
      | 'bad-gzip'
      | 'truncated'
      | 'trailing-garbage'
      | 'bad-tar'
      | 'unsupported-tar-entry'
      | 'limit-exceeded'
      | 'empty'
      | 'bad-ztoc',
    message: string,
    /** For `limit-exceeded`: the limit that was hit (a ZtocLimits name, or `pax-header-bytes`, ...). */
    readonly limit?: string,
  ) {
    super(message);
    this.name = 'ZtocError';
  }

  /**
   * The kind in soci-indexer's error vocabulary (lambda/oci/errors.ts ErrorKind; the engine imports
   * nothing, so it states the string): bytes that are not a valid layer or zTOC are `corrupt`.
   */
  get errorKind(): 'limit' | 'permanent' | 'corrupt' {
    if (this.code === 'limit-exceeded') return 'limit';
    return this.code === 'unsupported-compression' || this.code === 'unsupported-tar-entry' || this.code === 'empty'
      ? 'permanent'
      : 'corrupt';
  }
}
