// Materializes the golden fixtures (test/fixtures/golden) into a gitignored cache directory, once.
//
// The repository keeps them small: one solid brotli pack of everything that must be stored (tars, expected
// zTOCs, dumps, index JSON; similar tars side by side so the compressor shares their common tree), plus
// recipes for the compressed layers that the pinned Debian 12 tools regenerate byte for byte (gzip 1.12,
// pigz 2.6, zstd 1.5.4). Every file is checked against the sha256 of test/fixtures/golden/manifest.json
// before it is used. Two test processes may materialize at the same time: each builds a private temporary
// directory and renames it into place; the first rename wins and the other process discards its copy.
// Run this file directly (`node --import tsx test/support/golden-cache.ts`) to materialize ahead of tests.

import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync, constants } from 'node:zlib';

export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const fixturesDir = join(repoRoot, 'test', 'fixtures', 'golden');
const manifestPath = join(fixturesDir, 'manifest.json');

/** How a file that is not stored is rebuilt from another golden file with a pinned tool. */
export interface GoldenRecipe {
  /** The tool and its arguments; the input file's path is appended. Output is the tool's stdout. */
  command: string[];
  /** Golden path of the input file. */
  input: string;
  /** Optional header splice: drop this many leading bytes of the tool's output ... */
  replaceHead?: number;
  /** ... and put these bytes (hex) in their place (e.g. a gzip header with FNAME and MTIME). */
  head?: string;
}

export interface GoldenFileEntry {
  path: string;
  sha256: string;
  size: number;
  /** Absent: the bytes are in the pack (found by sha256). */
  recipe?: GoldenRecipe;
}

export interface GoldenManifest {
  /** File name of the brotli pack beside the manifest. */
  pack: string;
  /** sha256 of the pack's uncompressed bytes, the concatenation of `blobs`. */
  packSha256: string;
  /** Unique contents in pack order; a file's bytes are found by its sha256. */
  blobs: { sha256: string; size: number }[];
  /** The golden layers by file name and where each is stored (layers/ or an image-layout blob). */
  layers: { name: string; path: string }[];
  files: GoldenFileEntry[];
}

export function readGoldenManifest(): GoldenManifest {
  return JSON.parse(readFileSync(manifestPath, 'utf8')) as GoldenManifest;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Where the materialized fixtures live: under node_modules/.cache (gitignored, removed by `npm ci`), in a
 * directory named after the manifest's digest, so a changed manifest never sees stale files.
 */
export function goldenCacheDir(): string {
  const tag = sha256(readFileSync(manifestPath)).slice(0, 16);
  return join(repoRoot, 'node_modules', '.cache', 'soci-indexer', `golden-${tag}`);
}

const COMPLETE = '.complete';
let materialized: string | undefined;

/** Returns the directory holding every golden file, materializing it first if needed. */
export function materializeGolden(): string {
  if (materialized) return materialized;
  const dir = goldenCacheDir();
  if (!existsSync(join(dir, COMPLETE))) build(dir);
  materialized = dir;
  return dir;
}

function build(dir: string): void {
  const manifest = readGoldenManifest();
  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    const packed = readFileSync(join(fixturesDir, manifest.pack));
    const raw = brotliDecompressSync(packed, {
      params: { [constants.BROTLI_DECODER_PARAM_LARGE_WINDOW]: 1 },
      maxOutputLength: 2 ** 31 - 1,
    });
    if (sha256(raw) !== manifest.packSha256) throw new Error(`${manifest.pack}: unpacked bytes do not match packSha256`);
    const blobs = new Map<string, Buffer>();
    let offset = 0;
    for (const blob of manifest.blobs) {
      blobs.set(blob.sha256, raw.subarray(offset, offset + blob.size));
      offset += blob.size;
    }
    if (offset !== raw.length) throw new Error(`${manifest.pack}: ${raw.length} bytes unpacked, blobs list ${offset}`);

    // Stored files first: recipes read them from the temporary directory.
    const ordered = [...manifest.files.filter((f) => !f.recipe), ...manifest.files.filter((f) => f.recipe)];
    for (const file of ordered) {
      const bytes = file.recipe ? regenerate(tmp, file.recipe) : blobs.get(file.sha256);
      if (!bytes) throw new Error(`golden ${file.path}: sha256 ${file.sha256} is not in ${manifest.pack}`);
      const got = sha256(bytes);
      if (got !== file.sha256 || bytes.length !== file.size) {
        const how = file.recipe
          ? ` (regenerated with \`${file.recipe.command.join(' ')}\`; see test/fixtures/README.md for the tool versions)`
          : '';
        throw new Error(`golden ${file.path}: sha256 ${got} (${bytes.length} bytes), expected ${file.sha256} (${file.size} bytes)${how}`);
      }
      const target = join(tmp, file.path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, bytes);
    }
    writeFileSync(join(tmp, COMPLETE), `${manifest.packSha256}\n`);
    try {
      renameSync(tmp, dir);
    } catch (err) {
      // Another process renamed its complete copy into place first: keep that one.
      if (!existsSync(join(dir, COMPLETE))) throw err;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function regenerate(tmp: string, recipe: GoldenRecipe): Buffer {
  const [tool, ...args] = recipe.command as [string, ...string[]];
  const run = spawnSync(tool, [...args, join(tmp, recipe.input)], { maxBuffer: 1 << 30 });
  if (run.error || run.status !== 0) {
    const why = run.error ? run.error.message : `exit ${run.status}: ${run.stderr.toString().trim()}`;
    throw new Error(`golden fixtures need \`${tool}\` (see test/fixtures/README.md): ${why}`);
  }
  let out = run.stdout;
  if (recipe.replaceHead !== undefined) out = Buffer.concat([Buffer.from(recipe.head ?? '', 'hex'), out.subarray(recipe.replaceHead)]);
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(materializeGolden());
}
