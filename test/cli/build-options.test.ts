// What `soci-indexer build` hands the soci core: the full BuildOptions derived from each flag (deep
// equality, so a flag the CLI drops fails), and end-to-end runs of the modes whose effect is in the output:
// --platform on a multi-platform image, and v1 with the golden index bytes.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseArgs } from 'node:util';
import { BUILD_OPTIONS, buildOptionsFrom } from '../../lambda/cli/build-command.ts';
import { layoutV1RefName } from '../../lambda/soci/build.ts';
import type { BuildOptions } from '../../lambda/soci/types.ts';
import { DEFAULT_BUILD_TOOL_ID } from '../../lambda/ztoc/builder.ts';
import { GOLDEN_A_SETTINGS, goldenPath, sha256Hex } from '../support/golden.ts';
import { goldenLayoutDir, layoutCopier } from '../support/layouts.ts';
import { runCli } from '../support/run.ts';

const copy = await layoutCopier('cli-options');

function optionsOf(args: string[]): BuildOptions {
  return buildOptionsFrom(parseArgs({ args, options: BUILD_OPTIONS, allowPositionals: true }).values);
}

const DEFAULTS: BuildOptions = {
  spanSize: 4194304,
  minLayerSize: 10485760,
  indexVersion: 'v2',
  platforms: 'all',
  buildToolId: DEFAULT_BUILD_TOOL_ID,
  concurrency: availableParallelism(),
  tagPolicy: { mode: 'suffix', suffix: '-soci' },
  dryRun: false,
};

describe('CLI: each flag reaches the core', () => {
  test('no flag: the documented defaults (--concurrency = CPUs)', () => {
    assert.deepEqual(optionsOf([]), DEFAULTS);
  });

  const CASES: [string[], Partial<BuildOptions>][] = [
    [['--span-size', '65536'], { spanSize: 65536 }],
    [['--min-layer-size', '0'], { minLayerSize: 0 }],
    [['--index-version', 'v1'], { indexVersion: 'v1' }],
    [['--platform', 'linux/arm64', '--platform', 'linux/amd64,linux/s390x'], { platforms: ['linux/arm64', 'linux/amd64', 'linux/s390x'] }],
    [['--concurrency', '3'], { concurrency: 3 }],
    [['--tag-suffix', '.lazy'], { tagPolicy: { mode: 'suffix', suffix: '.lazy' } }],
    [['--output-tag', 'a', '--output-tag', 'b'], { tagPolicy: { mode: 'tags', tags: ['a', 'b'] } }],
    [['--in-place'], { tagPolicy: { mode: 'in-place' } }],
    [['--build-tool-id', 'AWS SOCI CLI v0.2'], { buildToolId: 'AWS SOCI CLI v0.2' }],
    [['--optimizations', 'xattr'], { optimizations: ['xattr'] }],
    [['--prefetch-file', 'etc/hostname', '--prefetch-file', '/usr/bin/app'], { prefetchFiles: ['etc/hostname', '/usr/bin/app'] }],
    [['--dry-run'], { dryRun: true }],
  ];
  for (const [args, changed] of CASES) {
    test(args.join(' '), () => {
      assert.deepEqual(optionsOf(args), { ...DEFAULTS, ...changed });
    });
  }
});

const run = runCli;

describe('CLI end to end', () => {
  test('--platform on a multi-platform image indexes that platform only, recorded as asked', async () => {
    const { dir } = await copy();
    const r = await run([
      'build',
      `oci:${dir}:latest`,
      '--platform',
      'linux/arm64',
      '--min-layer-size',
      '1048576',
      '--concurrency',
      '1',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.status, 'created');
    assert.deepEqual(
      result.platforms.map((p: { platform: string }) => p.platform),
      ['linux/arm64/v8'],
    );
    const output = JSON.parse(await readFile(join(dir, 'blobs', 'sha256', result.output.digest.slice(7)), 'utf8'));
    const soci = output.manifests.filter((m: { artifactType?: string }) => m.artifactType === 'application/vnd.amazon.soci.index.v2+json');
    assert.deepEqual(
      soci.map((m: { platform: unknown }) => m.platform),
      [{ architecture: 'arm64', os: 'linux' }],
    );
  });

  test('v1 through the CLI writes the golden SOCI index and finds it again', async () => {
    const { dir } = await copy(goldenLayoutDir());
    const args = ['build', `oci:${dir}:golden`, '--index-version', 'v1', ...GOLDEN_A_SETTINGS, '--json'];
    const first = await run(args);
    assert.equal(first.code, 0, first.stderr);
    const golden = await readFile(goldenPath('index', 'a-span4m-min1MiB', 'soci-index-v1.json'));
    const expected = `sha256:${sha256Hex(golden)}`;
    const result = JSON.parse(first.stdout);
    assert.equal(result.indexVersion, 'v1');
    assert.equal(result.output.digest, expected);
    assert.ok((await readFile(join(dir, 'blobs', 'sha256', expected.slice(7)))).equals(golden));
    assert.deepEqual(result.output.tags, [layoutV1RefName(result.platforms[0].manifestDigest)]);
    const again = await run(args);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual([JSON.parse(again.stdout).status, JSON.parse(again.stdout).output.digest], ['already-indexed', expected]);
  });
});
