#!/usr/bin/env node
// Bundles the CLI into dist/cli.mjs (run by `npm ci`/`npm install` through "prepare"), so the bin starts
// without compiling TypeScript on every run. bin/soci-indexer falls back to the sources when the bundle
// is missing or older than them.
import { build } from 'esbuild';

await build({
  entryPoints: ['lambda/cli.ts'],
  outfile: 'dist/cli.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
});
