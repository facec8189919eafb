// The package's promises that need no build: one version everywhere (package.json, the code, the
// changelog), nothing a user runs depends on a development tool, and the CDK peers this repository
// tests with are inside the advertised range. scripts/consumer-check.sh checks the packed package itself.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { VERSION } from '../lambda/version.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

interface PackageJson {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
  exports: Record<string, string | Record<string, Record<string, string>>>;
  files: string[];
  engines: { node: string };
  license: string;
  repository: { type: string; url: string };
  homepage: string;
  bugs: { url: string };
}
const pkg = JSON.parse(readFileSync(`${repoRoot}/package.json`, 'utf8')) as PackageJson;

/** `^x.y.z` as npm reads it for x >= 1: same major, at least x.y.z. */
function caretSatisfied(range: string, version: string): boolean {
  const m = /^\^(\d+)\.(\d+)\.(\d+)$/.exec(range);
  assert.ok(m, `unexpected range ${range}`);
  const want = m.slice(1).map(Number);
  const have = version.split('.').map(Number);
  if (have[0] !== want[0]) return false;
  for (let i = 1; i < 3; i++) if (have[i] !== want[i]) return have[i]! > want[i]!;
  return true;
}

describe('package', () => {
  test('one version: package.json, the code (zTOC build tool id, --version) and a CHANGELOG entry', () => {
    assert.match(pkg.version, /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'a SemVer version');
    assert.equal(VERSION, pkg.version);
    const changelog = readFileSync(`${repoRoot}/CHANGELOG.md`, 'utf8');
    assert.ok(
      changelog.split('\n').some((line) => line.startsWith(`## ${pkg.version} `) || line === `## ${pkg.version}`),
      `CHANGELOG.md has no "## ${pkg.version}" entry`,
    );
  });

  test('what runs needs no development tool: no TypeScript loader, bundler or compiler among the dependencies', () => {
    for (const tool of ['tsx', 'esbuild', 'typescript', 'aws-cdk-lib', 'constructs', 'aws-cdk']) {
      assert.equal(pkg.dependencies[tool], undefined, `${tool} is a runtime dependency`);
    }
  });

  test('aws-cdk-lib and constructs are optional peers whose range covers the versions tested here', () => {
    for (const peer of ['aws-cdk-lib', 'constructs']) {
      assert.ok(pkg.peerDependencies[peer], `${peer} is no peer dependency`);
      assert.equal(pkg.peerDependenciesMeta[peer]?.optional, true, `${peer} is needed only for soci-indexer/cdk`);
      assert.ok(
        caretSatisfied(pkg.peerDependencies[peer]!, pkg.devDependencies[peer]!),
        `${peer} ${pkg.devDependencies[peer]} is outside ${pkg.peerDependencies[peer]}`,
      );
    }
  });

  test('the entry points are the built files, with types first, and the package ships only dist/, the bin and the changelog', () => {
    assert.deepEqual(Object.keys(pkg.exports), ['.', './cdk', './package.json']);
    for (const key of ['.', './cdk']) {
      const conditions = pkg.exports[key] as Record<string, Record<string, string>>;
      assert.deepEqual(Object.keys(conditions), ['import', 'require']);
      // Each module format with declarations of its own kind, types first (TypeScript takes the first match).
      assert.deepEqual(Object.keys(conditions.import!), ['types', 'default']);
      assert.deepEqual(Object.keys(conditions.require!), ['types', 'default']);
      assert.match(conditions.import!.types!, /^\.\/dist\/types\/.*\.d\.ts$/);
      assert.match(conditions.import!.default!, /^\.\/dist\/.*\.mjs$/);
      assert.match(conditions.require!.types!, /^\.\/dist\/types\/.*\.d\.cts$/);
      assert.match(conditions.require!.default!, /^\.\/dist\/.*\.cjs$/);
    }
    assert.deepEqual(pkg.files, ['dist/', 'bin/soci-indexer', 'CHANGELOG.md']);
    assert.equal(pkg.license, 'Apache-2.0');
    assert.match(readFileSync(`${repoRoot}/LICENSE`, 'utf8'), /Apache License\s+Version 2\.0/);
  });

  test('repository, homepage and bugs name one and the same GitHub repository (what npm links to)', () => {
    assert.equal(pkg.repository.type, 'git');
    const m = /^git\+https:\/\/github\.com\/([\w.-]+\/[\w.-]+)\.git$/.exec(pkg.repository.url);
    assert.ok(m, `repository.url ${pkg.repository.url} is not git+https://github.com/<owner>/<name>.git`);
    assert.equal(pkg.homepage, `https://github.com/${m[1]}#readme`);
    assert.equal(pkg.bugs.url, `https://github.com/${m[1]}/issues`);
  });
});
