// Locates the golden data: upstream soci-snapshotter's expected zTOCs and indexes with the layers they
// were built from. It is kept in test/fixtures/golden (see test/fixtures/README.md) and materialized on
// first use into a gitignored cache directory (test/support/golden-cache.ts), so paths point there.

import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { goldenCacheDir, materializeGolden, readGoldenManifest, repoRoot } from './golden-cache.ts';

export { repoRoot };

/** The CLI settings the golden image index `a-span4m-min1MiB` was built with (upstream's span, min size, tool id). */
export const GOLDEN_A_SETTINGS = ['--span-size', '4194304', '--min-layer-size', '1048576', '--build-tool-id', 'AWS SOCI CLI v0.2'];

/** Where the golden files are once materialized; use goldenPath(), which materializes them first. */
export const goldenDir = goldenCacheDir();

export function goldenPath(...parts: string[]): string {
  return join(materializeGolden(), ...parts);
}

/** Sorted file names in a golden sub-directory that end with `suffix`. */
export function goldenFiles(dir: string, suffix = ''): string[] {
  return readdirSync(goldenPath(dir))
    .filter((name) => name.endsWith(suffix))
    .sort();
}

export interface GoldenLayer {
  name: string;
  path: string;
  digest: string;
  size: number;
}

/** The golden layers: file name -> where it is stored (layers/ or an image-layout blob), digest and size. */
export function goldenLayers(): Map<string, GoldenLayer> {
  const manifest = readGoldenManifest();
  const files = new Map(manifest.files.map((f) => [f.path, f]));
  const layers = new Map<string, GoldenLayer>();
  for (const { name, path } of manifest.layers) {
    const file = files.get(path)!;
    layers.set(name, { name, path: goldenPath(path), digest: `sha256:${file.sha256}`, size: file.size });
  }
  return layers;
}

export function goldenLayer(name: string): GoldenLayer {
  const layer = goldenLayers().get(name);
  if (!layer) throw new Error(`golden layer ${name} is not in test/fixtures/golden/manifest.json`);
  return layer;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
