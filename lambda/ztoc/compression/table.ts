// The compression table: every algorithm the engine indexes, in one entry each (algorithm.ts says what an
// entry holds). Detection (magic bytes), the choice by media type, the builder's dispatch, the codec's
// enum value, the verifier and the CLI all look algorithms up here; nothing else names them. To add one:
// a file beside gzip.ts with its entry, and its line in BUILT_IN (docs/design.md "Adding a compression").
import { ZtocError } from '../types.ts';
import type { Compression } from './algorithm.ts';
import { gzip } from './gzip.ts';
import { uncompressed } from './uncompressed.ts';

/** In the order `--compression` lists them. */
const BUILT_IN = (): Compression[] => [gzip, uncompressed];

/**
 * Formats recognised by their magic bytes that no entry indexes: such a layer is refused, not read as a
 * tar. An entry with the same magic takes precedence (a zstd entry would simply be added to the table).
 */
const UNINDEXABLE: readonly { name: string; magic: readonly number[] }[] = [
  { name: 'zstd', magic: [0x28, 0xb5, 0x2f, 0xfd] },
  { name: 'bzip2', magic: [0x42, 0x5a, 0x68] },
  { name: 'xz', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] },
];

/** What `detectFormat` says when no magic matches: the entry without magic (plain tar) takes it. */
export const TAR_OR_UNKNOWN = 'tar-or-unknown';

// Filled on first use: the entries' modules import the codec, which imports this table.
let table: Map<string, Compression> | undefined;

function entries(): Map<string, Compression> {
  if (!table) {
    table = new Map();
    for (const entry of BUILT_IN()) add(table, entry);
  }
  return table;
}

function add(to: Map<string, Compression>, entry: Compression): void {
  const clash = [...to.values()].find((e) => e.name === entry.name || e.fbsCode === entry.fbsCode || (!e.magic && !entry.magic));
  if (clash) throw new Error(`compression ${entry.name} clashes with ${clash.name} (same name, fbs code, or both without magic)`);
  to.set(entry.name, entry);
}

/** Adds an algorithm to the table (upstream's RegisterCompressionAlgorithm); returns its removal. */
export function registerCompression(entry: Compression): () => void {
  add(entries(), entry);
  return () => {
    if (table?.get(entry.name) === entry) table.delete(entry.name);
  };
}

export function compressions(): Compression[] {
  return [...entries().values()];
}

export function findCompression(name: string): Compression | undefined {
  return entries().get(name);
}

/** The entry of a zTOC's (or a caller's) algorithm name; an unknown name is an unsupported compression. */
export function compressionNamed(name: string): Compression {
  const entry = findCompression(name);
  if (!entry) throw new ZtocError('unsupported-compression', `unknown compression ${JSON.stringify(name)} (SOCI supports ${supported()})`);
  return entry;
}

export function compressionForFbsCode(code: number): Compression | undefined {
  return compressions().find((e) => e.fbsCode === code);
}

/** The entry indexing layers that containerd's DiffCompression calls `diffCompression` (oci/media-types). */
export function compressionForMediaType(diffCompression: string): Compression | undefined {
  return compressions().find((e) => e.mediaTypeCompressions.includes(diffCompression));
}

/** How many leading bytes detection needs (the longest magic). */
export function magicLength(): number {
  return Math.max(...[...compressions().map((e) => e.magic?.bytes ?? []), ...UNINDEXABLE.map((f) => f.magic)].map((m) => m.length));
}

/** An entry's magic as hex ("1f 8b"). */
export function magicHex(entry: Compression): string {
  return (entry.magic?.bytes ?? []).map((b) => b.toString(16).padStart(2, '0')).join(' ');
}

function startsWith(head: Uint8Array, magic: readonly number[]): boolean {
  return head.length >= magic.length && magic.every((b, i) => head[i] === b);
}

/** What the first bytes of a layer say it is: an entry's name, a known unindexable format, or TAR_OR_UNKNOWN. */
export function detectFormat(head: Uint8Array): string {
  const known = [...compressions().flatMap((e) => (e.magic ? [{ name: e.name, magic: e.magic.bytes }] : [])), ...UNINDEXABLE];
  return known.find((f) => startsWith(head, f.magic))?.name ?? TAR_OR_UNKNOWN;
}

/** "gzip and uncompressed tar". */
function supported(): string {
  const names = compressions().map((e) => e.description);
  return names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

/** The entry that reads a layer starting with `head`: `choice` if given (and the magic agrees), else by detection. */
export function chooseCompression(head: Uint8Array, choice: string | undefined): Compression {
  const format = detectFormat(head);
  if (choice === undefined || choice === 'auto') {
    const entry = format === TAR_OR_UNKNOWN ? compressions().find((e) => !e.magic) : findCompression(format);
    if (!entry) throw new ZtocError('unsupported-compression', `${format} layers cannot be indexed (SOCI supports ${supported()})`);
    return entry;
  }
  const entry = compressionNamed(choice);
  if (entry.magic && format !== entry.name) {
    throw new ZtocError(
      entry.magic.mismatch,
      `not a ${entry.name} stream (the first bytes are not ${magicHex(entry)}; detected ${format})`,
    );
  }
  return entry;
}
