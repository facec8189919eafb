// The dependency rules of docs/design.md, checked on the sources: adapters -> soci -> (oci, ztoc);
// registry/layout/memory -> oci; nothing in lambda/ knows about CDK. A backend-specific import in the soci
// core (say, `instanceof OciLayoutTarget`) fails here instead of surviving review.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

// The repository root, computed here rather than imported from support/golden.ts, whose fixture
// unpacking (gzip, pigz, zstd) would put this file out of the unit tier (scripts/test-tiers.mjs).
const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const LAMBDA = join(repoRoot, 'lambda');

// version.ts is a leaf (one constant) anyone may read; tsx is loaded only by the worker entry shims
// (layer-worker.mjs, toc-worker.mjs) when running from the TypeScript sources.
const LEAF = 'version.ts';
const WORKER_SHIM = /^tsx\/esm\/api$/;

/** Which lambda/ directories (and packages) each layer may import. */
const RULES: Record<string, { dirs: string[]; packages: RegExp }> = {
  ztoc: { dirs: ['ztoc', LEAF], packages: new RegExp(`^(flatbuffers|pako/.*)$|${WORKER_SHIM.source}`) },
  oci: { dirs: ['oci', LEAF], packages: /^$/ },
  soci: { dirs: ['soci', 'oci', 'ztoc', LEAF], packages: WORKER_SHIM },
  registry: { dirs: ['registry', 'oci', LEAF], packages: /^@aws-sdk\/client-ecr$/ },
  layout: { dirs: ['layout', 'oci', LEAF], packages: /^$/ },
  memory: { dirs: ['memory', 'oci', LEAF], packages: /^$/ },
};

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sources(path, out);
    else if (/\.(ts|mts|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** Module specifiers of static imports/exports and dynamic import() calls. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found = [
    ...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g),
    ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
  ];
  return found.map((m) => m[1]!);
}

/** `layer` a specifier reaches: a lambda/ top-level directory or file name, or the package name. */
function target(file: string, spec: string): { dir?: string; pkg?: string } {
  if (spec.startsWith('node:')) return {};
  if (!spec.startsWith('.')) return { pkg: spec };
  const path = relative(LAMBDA, resolve(dirname(file), spec));
  return { dir: path.startsWith('..') ? `outside:${path}` : path.split('/')[0]! };
}

describe('architecture', () => {
  const files = sources(LAMBDA);

  test('the sources are found and their imports parsed', () => {
    assert.ok(files.length > 40, `only ${files.length} files under lambda/`);
    assert.ok(specifiers(join(LAMBDA, 'soci', 'build.ts')).some((s) => s.startsWith('../oci/')));
  });

  for (const [layer, rule] of Object.entries(RULES)) {
    test(`lambda/${layer} imports only ${rule.dirs.join(', ')}${rule.packages.source === '^$' ? '' : ` and ${rule.packages.source}`}`, () => {
      const violations: string[] = [];
      for (const file of files.filter((f) => relative(LAMBDA, f).startsWith(`${layer}/`))) {
        for (const spec of specifiers(file)) {
          const { dir, pkg } = target(file, spec);
          if (dir !== undefined && !rule.dirs.includes(dir)) violations.push(`${relative(repoRoot, file)} -> ${spec}`);
          if (pkg !== undefined && !rule.packages.test(pkg)) violations.push(`${relative(repoRoot, file)} -> ${spec}`);
        }
      }
      assert.deepEqual(violations, []);
    });
  }

  test('the public API (lambda/index.ts) exposes the core and its backends, no adapter', () => {
    const allowed = ['ztoc', 'oci', 'soci', 'registry', 'layout', 'memory', LEAF];
    const file = join(LAMBDA, 'index.ts');
    const violations = specifiers(file).filter((spec) => !allowed.includes(target(file, spec).dir ?? '(a package)'));
    assert.deepEqual(violations, []);
  });

  test('nothing under lambda/ imports CDK or infra/', () => {
    const violations = files.flatMap((file) =>
      specifiers(file)
        .filter((spec) => /^(aws-cdk-lib|constructs|aws-cdk)(\/|$)/.test(spec) || target(file, spec).dir?.startsWith('outside:'))
        .map((spec) => `${relative(repoRoot, file)} -> ${spec}`),
    );
    assert.deepEqual(violations, []);
  });
});
