// `soci-indexer sync` through the real CLI (bin script, child process) against docker-registry, behind
// the fault proxy, which records every request: writes (PUT, POST, PATCH, DELETE) are counted there.
// Each test works in repositories of its own.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { type BuiltLayout, buildLayout, pushLayout } from '../support/images.ts';
import { type RunningRegistry, startRegistry } from '../support/registry.ts';
import { runCli as run } from '../support/run.ts';
import { writesDuring } from '../support/writes.ts';

let registry: RunningRegistry;
let proxy: FaultProxy;
const images: BuiltLayout[] = [];

before(async () => {
  registry = await startRegistry();
  proxy = await startFaultProxy({ upstream: registry.host });
  for (let i = 0; i < 4; i++) {
    images.push(
      await buildLayout({
        layers: [{ compression: 'gzip', files: [{ name: 'app/data.bin', size: 150_000, seed: `image ${i}` }] }],
        tag: 'latest',
      }),
    );
  }
});

after(async () => {
  await proxy?.stop();
  await registry?.stop();
});

const target = (repository: string) => new RegistryTarget({ registry: registry.host, repository });
const push = (image: BuiltLayout, ref: string) => pushLayout(image, `${registry.host}/${ref}`);

async function digestOf(repository: string, tag: string): Promise<string | undefined> {
  try {
    return (await target(repository).resolve(tag)).digest;
  } catch (err) {
    if ((err as { notFound?: boolean }).notFound) return undefined;
    throw err;
  }
}

async function deleteManifest(repository: string, digest: string): Promise<void> {
  const response = await fetch(`${registry.url}/v2/${repository}/manifests/${digest}`, { method: 'DELETE' });
  assert.equal(response.status, 202);
}

interface SyncJson {
  ok: boolean;
  dryRun: boolean;
  counts: Record<string, number>;
  failures: { repository: string; tag: string; action: string; reason: string }[];
  plan: { repositories: string[]; items: { repository: string; tag: string; action: string; reason: string; outputTag?: string }[] };
  results: { item: { repository: string; tag: string; action: string }; outcome: { ok: boolean; status: string; message: string } }[];
}

async function sync(patterns: string, ...extra: string[]): Promise<{ code: number; json: SyncJson; stderr: string }> {
  const result = await run(['sync', proxy.host, '--repositories', patterns, '--min-layer-size', '0', '--json', ...extra]);
  let json: SyncJson;
  try {
    json = JSON.parse(result.stdout) as SyncJson;
  } catch {
    assert.fail(`no JSON (exit ${result.code}): ${result.stderr}`);
  }
  return { code: result.code, json, stderr: result.stderr };
}

const actionsOf = (json: SyncJson) => Object.fromEntries(json.plan.items.map((i) => [`${i.repository}:${i.tag}`, i.action]));

describe('soci-indexer sync against docker-registry', () => {
  test('backfills the allowed repositories only; a rerun right after plans nothing and writes nothing', async () => {
    await push(images[0]!, 'fill/app:v1');
    await push(images[1]!, 'fill/app:v2');
    await push(images[2]!, 'fill/web:v1');
    await push(images[0]!, 'fill-other/svc:v1');

    const first = await sync('fill/*');
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(first.json.plan.repositories.sort(), ['fill/app', 'fill/web']);
    assert.deepEqual(actionsOf(first.json), { 'fill/app:v1': 'create', 'fill/app:v2': 'create', 'fill/web:v1': 'create' });
    assert.deepEqual(
      first.json.results.map((r) => r.outcome.status),
      ['created', 'created', 'created'],
    );
    assert.ok((await digestOf('fill/app', 'v1-soci')) !== undefined);
    assert.ok((await digestOf('fill/web', 'v1-soci')) !== undefined);
    assert.equal(await digestOf('fill-other/svc', 'v1-soci'), undefined, 'a repository outside the patterns is not touched');

    const again = await writesDuring(proxy.requests, () => sync('fill/*'));
    assert.equal(again.value.code, 0, again.value.stderr);
    assert.deepEqual(again.value.json.counts, { 'up-to-date': 3, create: 0, repair: 0, prune: 0, skip: 0, error: 0 });
    assert.deepEqual(again.value.json.results, []);
    assert.deepEqual(again.writes, [], 'the rerun wrote nothing');
  });

  test('a tag pattern selects tags; human output has the table; --dry-run plans and changes nothing', async () => {
    await push(images[0]!, 'pat/app:release-1');
    await push(images[1]!, 'pat/app:dev');
    const dry = await writesDuring(proxy.requests, () =>
      run(['sync', proxy.host, '--repositories', 'pat/app:release-*', '--min-layer-size', '0', '--dry-run']),
    );
    assert.equal(dry.value.code, 0, dry.value.stderr);
    assert.match(dry.value.stdout, /^create +pat\/app:release-1 -> release-1-soci: release-1-soci does not exist$/m);
    assert.doesNotMatch(dry.value.stdout, /pat\/app:dev/);
    assert.match(dry.value.stdout, /^create +1$/m);
    assert.match(dry.value.stdout, /^dry run: nothing was changed$/m);
    assert.deepEqual(dry.writes, []);
    assert.equal(await digestOf('pat/app', 'release-1-soci'), undefined);

    const real = await run(['sync', proxy.host, '--repositories', 'pat/app:release-*', '--min-layer-size', '0']);
    assert.equal(real.code, 0, real.stderr);
    assert.match(real.stdout, /^create +1 +1 +0$/m);
    assert.match(real.stdout, /^all succeeded$/m);
    assert.match(real.stderr, /^\[1\/1\] create +pat\/app:release-1: created SOCI index v2 for 1 platform /m);
  });

  test('repair after the tag moves: <tag>-soci is rebuilt for the new digest', async () => {
    await push(images[0]!, 'moved/app:v1');
    assert.equal((await sync('moved/app')).code, 0);
    const before = await digestOf('moved/app', 'v1-soci');

    await push(images[1]!, 'moved/app:v1');
    const repair = await sync('moved/app');
    assert.equal(repair.code, 0, repair.stderr);
    assert.deepEqual(actionsOf(repair.json), { 'moved/app:v1': 'repair' });
    assert.equal(
      repair.json.plan.items[0]!.reason,
      `v1-soci is a SOCI index for another digest than ${images[1]!.root.digest} or other settings`,
    );
    assert.equal(repair.json.results[0]!.outcome.status, 'created');
    const after = await digestOf('moved/app', 'v1-soci');
    assert.notEqual(after, before);

    const rerun = await sync('moved/app');
    assert.deepEqual(actionsOf(rerun.json), { 'moved/app:v1': 'up-to-date' });
  });

  test('other settings are a repair too; the suffix and in-place follow the options', async () => {
    await push(images[2]!, 'settings/app:v1');
    assert.equal((await sync('settings/app')).code, 0);
    const other = await sync('settings/app', '--span-size', '65536', '--dry-run');
    assert.deepEqual(actionsOf(other.json), { 'settings/app:v1': 'repair' });
    const suffix = await sync('settings/app', '--tag-suffix=-lazy', '--dry-run');
    assert.deepEqual(
      suffix.json.plan.items.map((i) => [i.tag, i.action, i.outputTag]),
      [
        ['v1', 'create', 'v1-lazy'],
        ['v1-soci', 'skip', 'v1-soci-lazy'],
      ],
    );
    assert.match(suffix.json.plan.items[1]!.reason, /^v1-soci is itself a SOCI-enabled image: /);

    await push(images[3]!, 'inplace/app:v1');
    const inPlace = await sync('inplace/app', '--in-place');
    assert.equal(inPlace.code, 0, inPlace.stderr);
    assert.deepEqual(
      inPlace.json.plan.items.map((i) => [i.tag, i.action, i.outputTag]),
      [['v1', 'create', 'v1']],
    );
    assert.notEqual(await digestOf('inplace/app', 'v1'), images[3]!.root.digest, 'v1 now names the SOCI-enabled index');
    const rerun = await writesDuring(proxy.requests, () => sync('inplace/app', '--in-place'));
    assert.deepEqual(actionsOf(rerun.value.json), { 'inplace/app:v1': 'up-to-date' });
    assert.deepEqual(rerun.writes, []);
  });

  test('prune deletes <tag>-soci of a deleted tag, only with --prune, and never what is not ours', async () => {
    const repo = 'prune/app';
    await push(images[0]!, `${repo}:v1`);
    await push(images[1]!, `${repo}:v2`);
    await push(images[2]!, `${repo}:shared`);
    assert.equal((await sync(repo)).code, 0);
    // A user's own images under output-looking tags: foo-soci without foo, and bar-soci next to bar.
    await push(images[3]!, `${repo}:foo-soci`);
    await push(images[3]!, `${repo}:bar`);
    await push(images[0]!, `${repo}:bar-soci`);
    // A user tagged our output of `shared` as `prod` as well.
    const sharedOutput = (await digestOf(repo, 'shared-soci'))!;
    await target(repo).tag(
      {
        mediaType: 'application/vnd.oci.image.index.v1+json',
        digest: sharedOutput,
        size: (await target(repo).resolve('shared-soci')).size,
      },
      'prod',
    );

    await deleteManifest(repo, images[1]!.root.digest); // v2 is gone
    await deleteManifest(repo, images[2]!.root.digest); // shared is gone
    const v2Output = await digestOf(repo, 'v2-soci');
    assert.ok(v2Output);

    const withoutPrune = await sync(repo);
    assert.equal(withoutPrune.json.counts.prune, 0);
    assert.ok(!withoutPrune.json.plan.items.some((i) => i.tag === 'v2'), 'no prune without --prune');
    assert.equal(actionsOf(withoutPrune.json)[`${repo}:bar`], 'skip');
    assert.equal(
      withoutPrune.json.plan.items.find((i) => i.tag === 'bar')!.reason,
      'bar-soci exists and was not made by soci-indexer: left alone',
    );

    const pruned = await writesDuring(proxy.requests, () => sync(repo, '--prune'));
    const { json } = pruned.value;
    assert.equal(pruned.value.code, 0, pruned.value.stderr);
    const actions = actionsOf(json);
    assert.equal(actions[`${repo}:v2`], 'prune');
    assert.equal(actions[`${repo}:foo`], 'skip');
    assert.equal(json.plan.items.find((i) => i.tag === 'foo')!.reason, 'foo-soci was not made by soci-indexer: left alone');
    assert.equal(actions[`${repo}:shared`], 'skip');
    assert.equal(
      json.plan.items.find((i) => i.tag === 'shared')!.reason,
      `shared-soci names ${sharedOutput}, also tagged prod; this registry deletes by digest, which would remove those tags too`,
    );
    assert.deepEqual(pruned.writes, [`DELETE /v2/${repo}/manifests/${v2Output}`], 'one delete, nothing else written');

    assert.equal(await digestOf(repo, 'v2-soci'), undefined, 'the orphaned output is gone');
    assert.equal(await digestOf(repo, 'foo-soci'), images[3]!.root.digest, "the user's foo-soci is left alone");
    assert.equal(await digestOf(repo, 'bar-soci'), images[0]!.root.digest, "the user's bar-soci is left alone");
    assert.equal(await digestOf(repo, 'prod'), sharedOutput, 'a tag sharing the digest survives');
    assert.ok(await digestOf(repo, 'v1-soci'));
  });

  test('one image failing does not stop the others; the exit code says so', async () => {
    await push(images[0]!, 'fail/a:v1');
    await push(images[1]!, 'fail/b:v1');
    await push(images[2]!, 'fail/c:v1');
    proxy.failNext(403, 1, { method: 'GET', path: new RegExp(`/v2/fail/b/blobs/${images[1]!.images[0]!.layers[0]!.digest}`) });
    const result = await sync('fail/*');
    assert.equal(result.code, 1);
    assert.equal(result.json.ok, false);
    assert.deepEqual(
      result.json.results.map((r) => [r.item.repository, r.outcome.status]),
      [
        ['fail/a', 'created'],
        ['fail/b', 'failed'],
        ['fail/c', 'created'],
      ],
    );
    assert.equal(result.json.failures.length, 1);
    const [failure] = result.json.failures;
    assert.deepEqual([failure!.repository, failure!.tag, failure!.action], ['fail/b', 'v1', 'create']);
    assert.match(failure!.reason, /denied \(403/);
    const human = await run(['sync', proxy.host, '--repositories', 'fail/*', '--min-layer-size', '0']);
    assert.equal(human.code, 0, 'the retry builds b');
    assert.match(human.stdout, /^create +1 +1 +0$/m);
  });

  test('--ztoc-cache: zTOCs are stored there, and the cache repository is never a source', async () => {
    await push(images[0]!, 'zc/app:v1');
    const first = await sync('zc/*', '--ztoc-cache', `${proxy.host}/zc/cache`);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(first.json.plan.repositories, ['zc/app']);
    assert.deepEqual(actionsOf(first.json), { 'zc/app:v1': 'create' });
    const catalog = (await (await fetch(`${registry.url}/v2/_catalog`)).json()) as { repositories: string[] };
    assert.ok(catalog.repositories.includes('zc/cache'), 'the zTOC went to the cache');
    const second = await sync('zc/*', '--ztoc-cache', `${proxy.host}/zc/cache`);
    assert.deepEqual(second.json.plan.repositories, ['zc/app'], 'zc/cache matches the pattern and is left out');
    assert.deepEqual(actionsOf(second.json), { 'zc/app:v1': 'up-to-date' });
  });

  test('bad input: one line, exit 2', async () => {
    for (const [args, message] of [
      [['sync', proxy.host], /--repositories is required/],
      [['sync', proxy.host, '--repositories', 'App:x:y'], /--repositories: .*more than one ':'/],
      [['sync', `${proxy.host}/app`, '--repositories', 'app'], /registry host\[:port\], not an image/],
      [
        ['sync', 'bad_host:5000', '--repositories', 'app'],
        /^soci-indexer: sync takes a registry host\[:port\]: "bad_host:5000" is not a valid registry host \(see --help\)\n$/,
      ],
      [['sync', 'localhost:http', '--repositories', 'app'], /"localhost:http" is not a valid registry host/],
      [['sync', proxy.host, '--repositories', 'app', '--prune', '--in-place'], /--prune applies to v2 output under a tag suffix/],
    ] as const) {
      const result = await run([...args]);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, message);
      assert.equal(result.stderr.trim().split('\n').length, 1);
    }
  });
});
