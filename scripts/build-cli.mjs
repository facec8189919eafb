#!/usr/bin/env node
// Bundles the CLI into dist/cli.mjs (run by `npm ci`/`npm install` through "prepare"), so the bin starts
// without compiling TypeScript on every run. bin/soci-indexer falls back to the sources when the bundle
// is missing or older than them.
import { build } from 'esbuild';

await build({
  // The workers are loaded at run time from beside the bundles (new URL('./layer-worker.mjs'), ...).
  entryPoints: { cli: 'lambda/cli.ts', 'layer-worker': 'lambda/soci/layer-worker.ts', 'toc-worker': 'lambda/ztoc/toc-worker.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // The AWS packages stay in node_modules (large, loaded lazily, and the Lambda bundles them its own way);
  // pako and flatbuffers are bundled: loading pako's CommonJS files from ESM cost each thread ~40-80 ms of
  // start-up (Node scans them for named exports), and every layer worker pays it again.
  external: ['@aws-sdk/*', '@aws-lambda-powertools/*'],
  sourcemap: 'linked',
  logLevel: 'warning',
});
