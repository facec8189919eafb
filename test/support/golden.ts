// Locates the shared golden data (../shared/golden relative to the repo root; never copied into the repo).

import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const goldenDir = resolve(repoRoot, '../shared/golden');

export function goldenPath(...parts: string[]): string {
  return join(goldenDir, ...parts);
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

/** The layer table of golden/README.md: file name -> where it is stored (layers/ or an image-layout blob). */
export function goldenLayers(): Map<string, GoldenLayer> {
  const readme = readFileSync(goldenPath('README.md'), 'utf8');
  const row = /^\| (\S+) \| (layers\/|image-layout\/blobs\/sha256\/) \| sha256:([0-9a-f]{64}) \| (\d+) \|/gm;
  const layers = new Map<string, GoldenLayer>();
  for (const m of readme.matchAll(row)) {
    const [, name, where, hex, size] = m as unknown as [string, string, string, string, string];
    const path = where === 'layers/' ? goldenPath('layers', name) : goldenPath('image-layout', 'blobs', 'sha256', hex);
    layers.set(name, { name, path, digest: `sha256:${hex}`, size: Number(size) });
  }
  return layers;
}

export function goldenLayer(name: string): GoldenLayer {
  const layer = goldenLayers().get(name);
  if (!layer) throw new Error(`golden layer ${name} is not in golden/README.md`);
  return layer;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
