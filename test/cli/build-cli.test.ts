// `soci-indexer build` as a user runs it (the real bin script in a child process): on a copy of the golden
// layout (golden digests, idempotent rerun, --json, --output to another layout), against a registry with basic auth through
// --username/--password-stdin, and the one-line errors for bad references and missing images.

import assert from 'node:assert/strict';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GOLDEN_A_SETTINGS, goldenPath, sha256Hex } from '../support/golden.ts';
import { buildLayout, pushLayout } from '../support/images.ts';
import { type RunningRegistry, startRegistry } from '../support/registry.ts';
import { runCli } from '../support/run.ts';

const run = runCli;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'build-cli-'));
});
after(() => rm(dir, { recursive: true, force: true }));

describe('build on an OCI layout', () => {
  test('golden settings a: the converted OCI index has the golden digest, a rerun pushes nothing', async () => {
    const layout = join(dir, 'golden-a');
    await cp(goldenPath('image-layout'), layout, { recursive: true });
    const args = ['build', `oci:${layout}:golden`, ...GOLDEN_A_SETTINGS, '--output-tag', 'soci', '--json'];
    const first = await run(args);
    assert.equal(first.code, 0, first.stderr);
    const result = JSON.parse(first.stdout);
    assert.equal(result.status, 'created');
    assert.equal(result.output.digest, 'sha256:e21d2307a2cb137478d28aa67ee466eec19d04de1b32c90cf83205ee7cc3c081');
    assert.deepEqual(result.output.tags, ['soci']);
    assert.equal(result.platforms[0].indexDigest, 'sha256:fc62f8fca2e6fd9c5c7d92b5fe87ac699d27575d1a5ba7e1c3f12ba32b3967d2');
    const skipped = result.platforms[0].layers
      .filter((l: { status: string }) => l.status === 'skipped')
      .map((l: { reason: string }) => l.reason);
    assert.equal(skipped.length, 2, 'the tiny layer and the zstd layer');
    const codes = result.platforms[0].layers
      .filter((l: { status: string }) => l.status === 'skipped')
      .map((l: { skipCode: string }) => l.skipCode);
    assert.deepEqual(codes.sort(), ['below-minimum-size', 'unsupported-format']);
    // Without --ztoc-cache there is no cache: no counts, every zTOC built.
    assert.equal(result.cache, undefined);
    const modes = result.platforms[0].layers.filter((l: { status: string }) => l.status === 'indexed').map((l: { ztoc: string }) => l.ztoc);
    assert.deepEqual(modes, ['built', 'built', 'built']);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
    assert.ok(index.manifests.some((m: { digest: string }) => m.digest === result.output.digest));

    const second = await run(args);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(JSON.parse(second.stdout).status, 'already-indexed');
  });

  test('--output oci:<dir>: the golden output is written to that layout; the source layout is left as it was', async () => {
    const source = join(dir, 'output-source');
    await cp(goldenPath('image-layout'), source, { recursive: true });
    const sourceIndex = await readFile(join(source, 'index.json'));
    const out = join(dir, 'output-target');
    const r = await run(['build', `oci:${source}:golden`, ...GOLDEN_A_SETTINGS, '--output', `oci:${out}`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    const golden = await readFile(goldenPath('index', 'a-span4m-min1MiB', 'converted-oci-index.json'));
    assert.equal(result.output.digest, `sha256:${sha256Hex(golden)}`);
    assert.deepEqual(result.output.tags, ['golden-soci']);
    assert.ok(
      (await readFile(join(out, 'blobs', 'sha256', sha256Hex(golden)))).equals(golden),
      'the golden index bytes in the output layout',
    );
    const outIndex = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
    assert.ok(
      outIndex.manifests.some(
        (m: { digest: string; annotations?: Record<string, string> }) =>
          m.digest === result.output.digest && m.annotations?.['org.opencontainers.image.ref.name'] === 'golden-soci',
      ),
      'tagged golden-soci in the output layout',
    );
    assert.ok((await readFile(join(source, 'index.json'))).equals(sourceIndex), 'the source layout is not tagged');
    await assert.rejects(readFile(join(source, 'blobs', 'sha256', sha256Hex(golden))), { code: 'ENOENT' });
  });

  test('the human summary names every layer and the output tag', async () => {
    const layout = join(dir, 'golden-human');
    await cp(goldenPath('image-layout'), layout, { recursive: true });
    const r = await run(['build', `oci:${layout}`, '--min-layer-size', '1048576', '--output-tag', 'v1-soci']);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /zTOC cache/, 'no cache line without --ztoc-cache');
    assert.match(r.stdout, /^platform\s+linux\/amd64/m);
    assert.match(
      r.stdout,
      /^ {2}layer +sha256:[0-9a-f]{12}… +125 B {2}skipped \(below-minimum-size\): below minimum layer size \(125 < 1048576\)$/m,
    );
    assert.match(
      r.stdout,
      /^ {2}layer +sha256:[0-9a-f]{12}… +[\d.]+ MiB {2}skipped \(unsupported-format\): zstd layers cannot be indexed$/m,
    );
    assert.equal(
      r.stdout.match(/^ {2}layer +sha256:[0-9a-f]{12}… +[\d.]+ MiB {2}zTOC sha256:[0-9a-f]{64} \(\d+ spans, \d+ entries\) built$/gm)
        ?.length,
      3,
    );
    assert.match(r.stdout, /^output +sha256:[0-9a-f]{64} tagged v1-soci$/m);
    assert.match(
      r.stderr,
      /^\[linux\/amd64\] indexing layer sha256:[0-9a-f]{12}… \([\d.]+ MiB\)$/m,
      'progress lines on stderr when not a TTY',
    );
  });

  test('bad references and missing images: one line, no stack trace', async () => {
    // The whole line: a pattern would also match the input the message repeats back.
    const cases: Array<[string[], number, string]> = [
      [
        ['build', 'Not A Reference!'],
        1,
        'soci-indexer: error: invalid image reference "Not A Reference!": the repository name must be lower case',
      ],
      [
        ['build', `oci:${join(dir, 'nowhere')}`],
        1,
        `soci-indexer: error: oci:${join(dir, 'nowhere')} is not an OCI image layout: no oci-layout`,
      ],
      [
        ['build', `oci:${goldenPath('image-layout')}:no-such-tag`],
        1,
        `soci-indexer: error: oci:${goldenPath('image-layout')}: no manifest tagged "no-such-tag"`,
      ],
      [['build', 'x', '--index-version', 'v3'], 2, 'soci-indexer: --index-version must be one of v1, v2, got "v3" (see --help)'],
      [
        ['build', 'x', '--in-place', '--output-tag', 't'],
        2,
        'soci-indexer: choose one of --tag-suffix, --output-tag and --in-place (see --help)',
      ],
    ];
    for (const [args, code, line] of cases) {
      const r = await run(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(r.stderr, `${line}\n`);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });
});

describe('build against a registry with basic auth', () => {
  let registry: RunningRegistry;
  const creds = { username: 'AWS', password: 'cli-test-password' };
  before(async () => {
    registry = await startRegistry({ auth: creds });
    const layout = await buildLayout({ layers: [{ compression: 'gzip', files: [{ name: 'app/blob.bin', size: 300_000 }] }], tag: 'v1' });
    await pushLayout(layout, `${registry.host}/cli/app:v1`, { creds });
  });
  after(() => registry.stop());

  test('--username with --password-stdin indexes and tags <tag>-soci; without credentials it fails in one line', async () => {
    const ok = await run(
      ['build', `${registry.host}/cli/app:v1`, '--min-layer-size', '0', '--username', creds.username, '--password-stdin', '--json'],
      `${creds.password}\n`,
    );
    assert.equal(ok.code, 0, ok.stderr);
    const result = JSON.parse(ok.stdout);
    assert.equal(result.status, 'created');
    assert.deepEqual(result.output.tags, ['v1-soci']);
    assert.doesNotMatch(ok.stdout + ok.stderr, new RegExp(creds.password));

    const denied = await run(['build', `${registry.host}/cli/app:v1`, '--min-layer-size', '0'], '');
    assert.equal(denied.code, 1);
    assert.equal(denied.stderr.trim().split('\n').length, 1, denied.stderr);
    assert.equal(denied.stderr, `soci-indexer: error: registry ${registry.host}: manifest cli/app:v1 unauthorized (401 UNAUTHORIZED)\n`);
  });

  test('credentials chain: --username beats the Docker config, which the CLI reads when no --username is given', async () => {
    const dockerConfig = await mkdtemp(join(tmpdir(), 'soci-cli-docker-config-'));
    const withConfig = async (password: string) => {
      const auth = Buffer.from(`${creds.username}:${password}`).toString('base64');
      await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth } } }));
      return { DOCKER_CONFIG: dockerConfig };
    };
    const args = ['build', `${registry.host}/cli/app:v1`, '--min-layer-size', '0', '--dry-run', '--json'];
    try {
      // A stale Docker config entry: explicit credentials come first, so it is never sent.
      const stale = await withConfig('stale-password');
      const explicit = await run([...args, '--username', creds.username, '--password-stdin'], `${creds.password}\n`, stale);
      assert.equal(explicit.code, 0, explicit.stderr);
      const fromStale = await run(args, '', stale);
      assert.equal(fromStale.code, 1, 'the stale entry is what the CLI sends without --username');
      assert.match(fromStale.stderr, /unauthorized \(401 UNAUTHORIZED\)\n$/);
      const fromConfig = await run(args, '', await withConfig(creds.password));
      assert.equal(fromConfig.code, 0, fromConfig.stderr);
    } finally {
      await rm(dockerConfig, { recursive: true, force: true });
    }
  });
});
