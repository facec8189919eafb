#!/usr/bin/env node
// Builds everything the package ships into dist/ (run by `npm ci`/`npm install` through "prepare", and by
// `npm pack`/`npm publish` through it too). `node scripts/build.mjs [--out DIR] [cli] [cdk] [lambda] [types]`
// builds only those parts (all without one) into DIR (default dist; the tests build elsewhere).
//
//   cli     dist/index.mjs (the core API), dist/cli.mjs, and the layer and TOC workers beside them;
//   cdk     dist/cdk.mjs, the construct (aws-cdk-lib and constructs stay the consumer's);
//   lambda  dist/lambda/: the function's code, prebuilt, so a consumer's `cdk synth` bundles nothing;
//   types   dist/types/: declarations of the two library entry points (.d.ts, and .d.cts for require).
//
// Every output is deterministic: no timestamps, no absolute paths (esbuild's comments name files relative
// to the repository root, its working directory here, and so do the source maps' `sources`, rewritten
// below), so the Lambda asset hash is the same wherever the same package-lock.json was installed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const {
  values: { out = 'dist' },
  positionals: asked,
} = parseArgs({ options: { out: { type: 'string' } }, allowPositionals: true });
const OUT = resolve(ROOT, out);
// ESM output meets CommonJS dependencies that call require() (the AWS SDK in the Lambda bundle); give
// them one.
const REQUIRE_BANNER = "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);";

// A CommonJS twin of a library entry point, for CDK apps compiled to CommonJS (`cdk init`'s template)
// on Node versions that cannot require() ES modules. import.meta.url (how the code finds the workers
// and the Lambda asset beside it) becomes the file's own URL.
const IMPORT_META_URL_BANNER = "const __import_meta_url = require('node:url').pathToFileURL(__filename).href;";
async function commonJsTwin(options) {
  await build({
    ...options,
    format: 'cjs',
    outExtension: { '.js': '.cjs' },
    banner: { js: IMPORT_META_URL_BANNER },
    define: { 'import.meta.url': '__import_meta_url' },
  });
}

const common = {
  absWorkingDir: ROOT,
  bundle: true,
  platform: 'node',
  format: 'esm',
  outExtension: { '.js': '.mjs' },
  logLevel: 'warning',
  legalComments: 'eof',
};

const parts = {
  async cli() {
    await commonJsTwin({ ...common, entryPoints: { index: 'lambda/index.ts' }, outdir: OUT, target: 'node20', external: ['@aws-sdk/*'] });
    await build({
      ...common,
      // The workers are loaded at run time from beside the bundles (new URL('./layer-worker.mjs'), ...).
      entryPoints: {
        index: 'lambda/index.ts',
        cli: 'lambda/cli.ts',
        'layer-worker': 'lambda/soci/layer-worker.ts',
        'toc-worker': 'lambda/ztoc/toc-worker.ts',
      },
      outdir: OUT,
      target: 'node20',
      // The ECR client stays a dependency (large, loaded only for ECR hosts). pako and flatbuffers are
      // bundled: loading pako's CommonJS files from ESM cost each thread ~40-80 ms of start-up (Node scans
      // them for named exports), and every layer worker pays it again.
      external: ['@aws-sdk/*'],
    });
  },

  async cdk() {
    const options = {
      ...common,
      entryPoints: { cdk: 'infra/index.ts' },
      outdir: OUT,
      target: 'node20',
      // The consumer's CDK: one construct tree, one aws-cdk-lib. The construct finds the Lambda asset at
      // new URL('../dist/lambda', import.meta.url), which is dist/lambda from infra/ and from dist/ alike.
      external: ['aws-cdk-lib', 'aws-cdk-lib/*', 'constructs'],
    };
    await build(options);
    await commonJsTwin(options);
  },

  async lambda() {
    const outdir = resolve(OUT, 'lambda');
    rmSync(outdir, { recursive: true, force: true });
    // esbuild always builds for <repository>/dist/lambda, wherever --out puts the files: the chunk names'
    // hashes cover the source map paths, which are relative to the output, so the asset (and its hash)
    // is the same bytes from any output directory.
    const canonical = resolve(ROOT, 'dist', 'lambda');
    const result = await build({
      ...common,
      // index.mjs exports `handler`; the workers sit beside it as in dist/.
      entryPoints: {
        index: 'lambda/handler.ts',
        // The sync (README "Backfill existing images"): the same asset, its own function and handler.
        'sync-handler': 'lambda/sync-handler.ts',
        'layer-worker': 'lambda/soci/layer-worker.ts',
        'toc-worker': 'lambda/ztoc/toc-worker.ts',
      },
      outdir: canonical,
      // The two handlers share nearly all their code (the core, the registry client, the AWS SDK) and the
      // workers the engine: shared modules go into chunk-<hash>.mjs files once instead of into every entry
      // (about 0.4 MB less in the packed package). The chunks sit beside the entries, where the code's
      // new URL('./layer-worker.mjs', import.meta.url) looks for the workers.
      splitting: true,
      chunkNames: 'chunk-[hash]',
      target: 'node24',
      mainFields: ['module', 'main'],
      banner: { js: REQUIRE_BANNER },
      minify: true,
      // Ship the AWS SDK version the handler was tested with rather than the runtime's, which drifts.
      external: [],
      // Stack traces name source files and lines (NODE_OPTIONS=--enable-source-maps); the sources
      // themselves are left out of the maps, which keeps the package small.
      sourcemap: 'linked',
      sourcesContent: false,
      write: false,
    });
    mkdirSync(outdir, { recursive: true });
    for (const file of result.outputFiles) {
      let contents = file.contents;
      if (file.path.endsWith('.map')) {
        // esbuild names sources relative to the map (`../../lambda/handler.ts`), which depends on where
        // the output goes; name them from the repository root instead (`lambda/handler.ts`).
        const map = JSON.parse(file.text);
        map.sources = map.sources.map((source) =>
          relative(ROOT, resolve(dirname(file.path), source))
            .split('\\')
            .join('/'),
        );
        contents = JSON.stringify(map);
      }
      writeFileSync(resolve(outdir, relative(canonical, file.path)), contents);
    }
  },

  types() {
    const outDir = resolve(OUT, 'types');
    rmSync(outDir, { recursive: true, force: true });
    const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));
    const run = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', outDir], { cwd: ROOT, stdio: 'inherit' });
    if (run.status !== 0) throw new Error(`declarations: tsc exited with ${run.status ?? run.signal}`);
    // tsc keeps the sources' `./x.ts` specifiers in declarations; a consumer's TypeScript resolves
    // `./x.js` to x.d.ts under every module resolution, so rewrite them. Each x.d.ts gets an x.d.cts
    // twin (specifiers `./x.cjs`) for the `require` condition: TypeScript before 5.8 refuses a CommonJS
    // app (what `cdk init` makes) that requires a package whose only declarations are ES modules.
    for (const file of walk(outDir)) {
      const text = readFileSync(file, 'utf8');
      const specifiers = /((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]*)\.ts(['"])/g;
      writeFileSync(file, text.replace(specifiers, '$1$2.js$3'));
      writeFileSync(file.replace(/\.d\.ts$/, '.d.cts'), text.replace(specifiers, '$1$2.cjs$3'));
    }
  },
};

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = resolve(dir, entry.name);
    return entry.isDirectory() ? walk(path) : [path];
  });
}

for (const name of asked) {
  if (!(name in parts)) {
    console.error(`build: unknown part ${JSON.stringify(name)} (known: ${Object.keys(parts).join(', ')})`);
    process.exit(2);
  }
}
// A full build starts from an empty directory, so nothing stale is packed.
if (asked.length === 0) rmSync(OUT, { recursive: true, force: true });
for (const name of asked.length > 0 ? asked : Object.keys(parts)) await parts[name]();
