// The push race through the real CLI (bin script, child process): D1 is pushed to app:v1 and `build` starts
// on it; the test proxy holds the reads of D1's layer while D2 is pushed to app:v1 (and, in suffix mode,
// indexed to completion). Released, D1's build must tag nothing: its result is `superseded`, and the tags
// stay where D2's push and D2's build put them. And a build held in a layer read the same way stops when
// interrupted (SIGINT), tagging nothing.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { repoRoot } from '../support/golden.ts';
import { type BuiltLayout, buildLayout, pushLayout } from '../support/images.ts';
import { type RunningRegistry, startRegistry } from '../support/registry.ts';

const BIN = join(repoRoot, 'bin', 'soci-indexer');

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

let registry: RunningRegistry;
let proxy: FaultProxy;
let d1: BuiltLayout;
let d2: BuiltLayout;

before(async () => {
  registry = await startRegistry();
  proxy = await startFaultProxy({ upstream: registry.host });
  const image = (seed: string) =>
    buildLayout({ layers: [{ compression: 'gzip', files: [{ name: 'app/data.bin', size: 200_000, seed }] }], tag: 'v1' });
  d1 = await image('first push');
  d2 = await image('second push');
});

after(async () => {
  await proxy?.stop();
  await registry?.stop();
});

const layerOf = (image: BuiltLayout) => image.images[0]!.layers[0]!.digest;
const target = (repository: string) => new RegistryTarget({ registry: registry.host, repository });

async function tagDigest(repository: string, tag: string): Promise<string | undefined> {
  try {
    return (await target(repository).resolve(tag)).digest;
  } catch (err) {
    if ((err as { notFound?: boolean }).notFound) return undefined;
    throw err;
  }
}

describe('build while the source tag is pushed again', () => {
  test('suffix mode: D2 indexed meanwhile keeps v1-soci; D1 finishes superseded, exit 0, nothing tagged', async () => {
    const repo = 'race/suffix';
    await pushLayout(d1, `${registry.host}/${repo}:v1`);
    const hold = proxy.holdBlob(layerOf(d1));
    const late = run(['build', `${proxy.host}/${repo}:v1`, '--min-layer-size', '0', '--json']);
    await hold.held;

    await pushLayout(d2, `${registry.host}/${repo}:v1`);
    const second = await run(['build', `${proxy.host}/${repo}:v1`, '--min-layer-size', '0', '--json']);
    assert.equal(second.code, 0, second.stderr);
    const d2Result = JSON.parse(second.stdout);
    assert.equal(d2Result.status, 'created');
    assert.equal(d2Result.source.digest, d2.root.digest);
    assert.equal(await tagDigest(repo, 'v1-soci'), d2Result.output.digest);

    hold.release();
    const first = await late;
    assert.equal(first.code, 0, first.stderr);
    const d1Result = JSON.parse(first.stdout);
    assert.equal(d1Result.status, 'superseded');
    assert.equal(d1Result.source.digest, d1.root.digest, 'the build stayed on the digest it resolved first');
    assert.match(d1Result.message, new RegExp(`source tag v1 now names ${d2.root.digest}.*nothing was tagged`));
    assert.equal(d1Result.output, undefined);
    assert.equal(d1Result.platforms[0].layers[0].status, 'indexed', 'the work was done, only the tagging was refused');
    assert.equal(await tagDigest(repo, 'v1-soci'), d2Result.output.digest, "D1's late build did not repoint v1-soci");
    assert.equal(await tagDigest(repo, 'v1'), d2.root.digest);
  });

  test('--in-place: the moved tag is never replaced; --fail-on-superseded exits 1 with one line', async () => {
    const repo = 'race/in-place';
    await pushLayout(d1, `${registry.host}/${repo}:v1`);
    const hold = proxy.holdBlob(layerOf(d1));
    const late = run(['build', `${proxy.host}/${repo}:v1`, '--min-layer-size', '0', '--in-place', '--fail-on-superseded']);
    await hold.held;
    await pushLayout(d2, `${registry.host}/${repo}:v1`);
    hold.release();

    const first = await late;
    assert.equal(first.code, 1, first.stdout + first.stderr);
    const errors = first.stderr.split('\n').filter((line) => line.startsWith('soci-indexer: error:'));
    assert.equal(errors.length, 1, first.stderr);
    assert.match(errors[0]!, new RegExp(`superseded: source tag v1 now names ${d2.root.digest}`));
    assert.doesNotMatch(first.stderr, /\n\s+at /);
    assert.match(first.stdout, /^result\s+superseded: /m, 'the summary still says what was built');
    assert.equal(await tagDigest(repo, 'v1'), d2.root.digest, 'the newer push still owns v1');
  });

  test('tag@digest pins the build: a tag that already names another image is superseded at once', async () => {
    const repo = 'race/pinned';
    await pushLayout(d2, `${registry.host}/${repo}:v1`);
    await pushLayout(d1, `${registry.host}/${repo}:old`);
    const pinned = await run(['build', `${proxy.host}/${repo}:v1@${d1.root.digest}`, '--min-layer-size', '0', '--json']);
    assert.equal(pinned.code, 0, pinned.stderr);
    const result = JSON.parse(pinned.stdout);
    assert.equal(result.source.digest, d1.root.digest);
    assert.equal(result.status, 'superseded');
    assert.equal(await tagDigest(repo, 'v1-soci'), undefined);

    const current = await run(['build', `${proxy.host}/${repo}:v1@${d2.root.digest}`, '--min-layer-size', '0', '--json']);
    assert.equal(current.code, 0, current.stderr);
    const created = JSON.parse(current.stdout);
    assert.equal(created.status, 'created');
    assert.deepEqual(created.output.tags, ['v1-soci'], 'the tag of tag@digest names the output');
  });
});

describe('build interrupted', () => {
  test('SIGINT stops a build waiting on a layer read: exit 1 with one line, nothing tagged', async () => {
    const repo = 'race/interrupted';
    await pushLayout(d1, `${registry.host}/${repo}:v1`);
    const hold = proxy.holdBlob(layerOf(d1));
    let child!: ReturnType<typeof execFile>;
    const exited = new Promise<{ code: number; stderr: string }>((resolve) => {
      child = execFile(process.execPath, [BIN, 'build', `${proxy.host}/${repo}:v1`, '--min-layer-size', '0'], (err, _stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stderr }),
      );
    });
    await hold.held;
    child.kill('SIGINT');
    // Were the interrupt not passed to the build, the held read would wait for ever: released after a
    // generous bound, the build would then finish (exit 0) and fail the test instead of hanging it.
    const bound = setTimeout(() => hold.release(), 30_000);
    const r = await exited;
    clearTimeout(bound);
    hold.release();
    assert.equal(r.code, 1, r.stderr);
    const errors = r.stderr.split('\n').filter((line) => line.startsWith('soci-indexer: error:'));
    assert.equal(errors.length, 1, r.stderr);
    assert.equal(errors[0], 'soci-indexer: error: interrupted');
    assert.equal(await tagDigest(repo, 'v1-soci'), undefined, 'nothing tagged');
  });
});
