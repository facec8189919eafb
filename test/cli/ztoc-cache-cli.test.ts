// `soci-indexer build --ztoc-cache` as a user runs it (the real bin script in a child process): a zTOC
// cache in an OCI layout shared by two copies of the golden image layout; the second reads no layer and
// still gets upstream's golden digests. (The cache against registries: test/soci/ztoc-cache*.test.ts.)

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { GOLDEN_A_SETTINGS, goldenPath, repoRoot } from '../support/golden.ts';

const BIN = join(repoRoot, 'bin', 'soci-indexer');

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin?.end('');
  });
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ztoc-cache-cli-'));
});
after(() => rm(dir, { recursive: true, force: true }));

describe('build --ztoc-cache', () => {
  test('--ztoc-cache: a second layout of the same image reuses every zTOC, reads no layer, gets the golden digests', async () => {
    const cache = join(dir, 'ztoc-cache');
    const settings = [...GOLDEN_A_SETTINGS, '--output-tag', 'soci', '--ztoc-cache', `oci:${cache}`];
    const results = [];
    for (const name of ['cached-1', 'cached-2']) {
      const layout = join(dir, name);
      await cp(goldenPath('image-layout'), layout, { recursive: true });
      const r = await run(['build', `oci:${layout}:golden`, ...settings, '--json']);
      assert.equal(r.code, 0, r.stderr);
      results.push(JSON.parse(r.stdout));
    }
    const [first, second] = results;
    const modes = (result: { platforms: { layers: { ztoc?: string }[] }[] }) =>
      result.platforms[0]!.layers.flatMap((l) => (l.ztoc ? [l.ztoc] : []));
    assert.deepEqual(modes(first), ['built', 'built', 'built']);
    assert.deepEqual(modes(second), ['reused', 'reused', 'reused']);
    assert.equal(second.bytesRead, 0);
    assert.equal(second.cache.reused, 3);
    assert.equal(second.cache.bytesSaved, first.bytesRead);
    for (const result of results) {
      assert.equal(result.output.digest, 'sha256:e21d2307a2cb137478d28aa67ee466eec19d04de1b32c90cf83205ee7cc3c081');
      assert.equal(result.platforms[0].indexDigest, 'sha256:fc62f8fca2e6fd9c5c7d92b5fe87ac699d27575d1a5ba7e1c3f12ba32b3967d2');
    }

    const layout = join(dir, 'cached-human');
    await cp(goldenPath('image-layout'), layout, { recursive: true });
    const human = await run(['build', `oci:${layout}:golden`, ...settings]);
    assert.equal(human.code, 0, human.stderr);
    assert.equal(human.stdout.match(/zTOC sha256:[0-9a-f]{64} \(\d+ spans, \d+ entries\) reused$/gm)?.length, 3, human.stdout);
    assert.match(human.stdout, /^zTOC cache oci:.*: 3 reused \(.* not read\), 0 stored, 0 missed$/m);
    assert.equal(
      human.stderr.match(
        /^\[linux\/amd64\] layer sha256:[0-9a-f]{12}… zTOC reused from the cache: zTOC sha256:[0-9a-f]{12}… \(\d+ spans, \d+ entries\)$/gm,
      )?.length,
      3,
      human.stderr,
    );
  });

  test('a --ztoc-cache that is not a repository: one line, exit 2', async () => {
    const notARepository =
      'soci-indexer: --ztoc-cache takes a repository (host[:port]/repository, no tag or digest) or oci:<dir> (see --help)\n';
    for (const [value, line] of [
      ['localhost:5000/cache:tag', notARepository],
      ['cache', notARepository],
      ['oci:/tmp/x:ref', 'soci-indexer: --ztoc-cache oci:<dir> takes no ref name (see --help)\n'],
    ] as const) {
      const r = await run(['build', 'x', '--ztoc-cache', value]);
      assert.equal(r.code, 2, `${value}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(r.stderr, line);
    }
  });
});
