// Builds test/fixtures/golden/{manifest.json,golden.pack.br} from a directory holding the upstream golden
// set (layers/, ztoc/, dump/, index/, image-layout/ and its README layer table). Run once when the golden
// set changes: `node --import tsx scripts/pack-golden.ts <golden-dir>`; test/support/golden-cache.ts
// does the reverse. The compressed layers the pinned tools rebuild byte for byte become recipes (checked
// here, before anything is written), everything else goes into one solid brotli pack, deduplicated by
// digest and ordered so that similar tars sit side by side.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { brotliCompressSync, constants, gunzipSync } from 'node:zlib';
import { fixturesDir, type GoldenFileEntry, type GoldenManifest, type GoldenRecipe } from '../test/support/golden-cache.ts';

const source = process.argv[2];
if (!source) {
  console.error('usage: pack-golden.ts <golden-dir>');
  process.exit(2);
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const blob = (hex: string) => `image-layout/blobs/sha256/${hex}`;

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else out.push(relative(source!, path));
  }
  return out;
}

// The layer table: file name -> where it is stored (layers/ or an image-layout blob).
const readme = readFileSync(join(source, 'README.md'), 'utf8');
const layers: { name: string; path: string }[] = [];
for (const m of readme.matchAll(/^\| (\S+) \| (layers\/|image-layout\/blobs\/sha256\/) \| sha256:([0-9a-f]{64}) \| (\d+) \|/gm)) {
  layers.push({ name: m[1]!, path: m[2] === 'layers/' ? `layers/${m[1]}` : blob(m[3]!) });
}
const layerPath = (name: string) => layers.find((l) => l.name === name)!.path;

// gotar.tar itself is not in the set; it is the source of three compressed layers, so it is stored.
const gotar = gunzipSync(readFileSync(join(source, layerPath('gotar.tar.gzip6n.gz'))));
const fnameGz = readFileSync(join(source, layerPath('gnutar.tar.gzip6-fname.gz')));
const fnameHeaderLength = fnameGz.indexOf(0, 10) + 1; // 10 fixed bytes, then the NUL-terminated FNAME
const recipes: Record<string, GoldenRecipe> = {
  [layerPath('gotar.tar.gzip6n.gz')]: { command: ['gzip', '-6', '-n', '-c'], input: 'sources/gotar.tar' },
  [layerPath('gotar.tar.pigz6.gz')]: { command: ['pigz', '-6', '-n', '-b', '128', '-c'], input: 'sources/gotar.tar' },
  [layerPath('gotar.tar.zst')]: { command: ['zstd', '-3', '-q', '-c'], input: 'sources/gotar.tar' },
  [layerPath('gotar-mini.tar.gzip6n.gz')]: { command: ['gzip', '-6', '-n', '-c'], input: layerPath('gotar-mini.tar') },
  // `gzip -6 -k gnutar.tar` wrote FNAME and MTIME; the deflate stream and trailer are those of `gzip -6 -n`.
  [layerPath('gnutar.tar.gzip6-fname.gz')]: {
    command: ['gzip', '-6', '-n', '-c'],
    input: layerPath('gnutar.tar'),
    replaceHead: 10,
    head: fnameGz.subarray(0, fnameHeaderLength).toString('hex'),
  },
};

const contents = new Map<string, Buffer>([['sources/gotar.tar', gotar]]);
for (const path of walk(source)) {
  if (path === 'README.md') continue; // described in test/fixtures/README.md instead
  contents.set(path, readFileSync(join(source, path)));
}

// Check every recipe against the real bytes before trusting it.
const scratch = mkdtempSync(join(tmpdir(), 'pack-golden-'));
try {
  for (const [path, recipe] of Object.entries(recipes)) {
    const input = join(scratch, recipe.input.replaceAll('/', '_'));
    writeFileSync(input, contents.get(recipe.input)!);
    const [tool, ...args] = recipe.command as [string, ...string[]];
    const run = spawnSync(tool, [...args, input], { maxBuffer: 1 << 30 });
    if (run.status !== 0) throw new Error(`${tool} failed: ${run.stderr}`);
    let out = run.stdout;
    if (recipe.replaceHead !== undefined) out = Buffer.concat([Buffer.from(recipe.head!, 'hex'), out.subarray(recipe.replaceHead)]);
    if (sha256(out) !== sha256(contents.get(path)!)) throw new Error(`recipe for ${path} does not reproduce it`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

// Pack order: the tars that share a tree next to each other, then zTOCs (their windows repeat tar bytes),
// then the rest.
const rank = (path: string) =>
  path === 'sources/gotar.tar'
    ? 2
    : /\.tar$/.test(path) || path === layerPath('paxtar.tar')
      ? path.includes('gotar')
        ? 2
        : 1
      : path.endsWith('.ztoc') || path.includes('/ztoc-')
        ? 3
        : path.startsWith('dump/')
          ? 4
          : 5;
const files: GoldenFileEntry[] = [];
const order: string[] = [];
const seen = new Set<string>();
for (const path of [...contents.keys()].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1))) {
  const bytes = contents.get(path)!;
  const entry: GoldenFileEntry = { path, sha256: sha256(bytes), size: bytes.length };
  if (recipes[path]) entry.recipe = recipes[path];
  else if (!seen.has(entry.sha256)) {
    seen.add(entry.sha256);
    order.push(path);
  }
  files.push(entry);
}
const raw = Buffer.concat(order.map((path) => contents.get(path)!));
const packed = brotliCompressSync(raw, {
  params: {
    [constants.BROTLI_PARAM_QUALITY]: 9, // 10 and 11 gain little on these bytes and take minutes
    [constants.BROTLI_PARAM_LARGE_WINDOW]: 1,
    [constants.BROTLI_PARAM_LGWIN]: 30,
    [constants.BROTLI_PARAM_SIZE_HINT]: raw.length,
  },
  maxOutputLength: 2 ** 31 - 1,
});
const manifest: GoldenManifest = {
  pack: 'golden.pack.br',
  packSha256: sha256(raw),
  blobs: order.map((path) => ({ sha256: sha256(contents.get(path)!), size: contents.get(path)!.length })),
  layers,
  files: files.sort((a, b) => (a.path < b.path ? -1 : 1)),
};
writeFileSync(join(fixturesDir, manifest.pack), packed);
writeFileSync(join(fixturesDir, 'manifest.json'), `${JSON.stringify(manifest, null, 1)}\n`);
console.log(`${files.length} files, ${order.length} stored (${raw.length} bytes -> ${packed.length} packed)`);
