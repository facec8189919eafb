// End to end: the real Lambda entry point (`lambda/handler.ts`, configured from process.env as in Lambda)
// with the real soci core and registry client, against a real docker-registry with basic auth (seen
// through the test proxy, which counts requests and redirects blob reads to another port as ECR does),
// a loopback ECR control plane whose GetAuthorizationToken names that registry as proxyEndpoint, and a
// loopback EventBridge that records completion events.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { handlerFromEnvironment } from '../../lambda/handler/wiring.ts';
import { OciLayoutTarget } from '../../lambda/layout/oci-layout.ts';
import { sha256Digest } from '../../lambda/oci/digest.ts';
import type { Descriptor } from '../../lambda/oci/target.ts';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { OciRegistryListing } from '../../lambda/registry/listing.ts';
import { buildSociIndex, DEFAULT_BUILD_OPTIONS } from '../../lambda/soci/build.ts';
import type { BuildOptions } from '../../lambda/soci/types.ts';
import type { FakeAwsServer, FakeEventBridge } from '../support/fake-aws.ts';
import type { FaultProxy } from '../support/fault-proxy.ts';
import { goldenPath, sha256Hex } from '../support/golden.ts';
import { type HandlerWorld, startHandlerWorld } from '../support/handler-world.ts';
import { type BuiltLayout, buildLayout, pushLayout } from '../support/images.ts';
import { goldenLayoutDir, layoutCopier } from '../support/layouts.ts';
import type { RunningRegistry } from '../support/registry.ts';
import { watchWrites } from '../support/writes.ts';
import { cachedLayerDigests } from '../support/ztoc-cache-world.ts';
import { capture, fixture, lambdaContext, metricValues } from './helpers.ts';

const copyLayout = await layoutCopier('e2e-golden');

const password = 'e2e-ecr-password-5c4b3a';
const creds = { username: 'AWS', password };

let world: HandlerWorld;
let registry: RunningRegistry;
let proxy: FaultProxy;
let ecr: FakeAwsServer;
let events: FakeEventBridge;
let single: BuiltLayout;
let multi: BuiltLayout;
let handler: (
  event: unknown,
  context: ReturnType<typeof lambdaContext>,
) => Promise<{ outcome: string; reason?: string; outputDigest?: string; outputTag?: string }>;
let multiRepo: RegistryTarget;

before(async () => {
  world = await startHandlerWorld({ password, proxy: { referrers: true } });
  ({ registry, ecr, events } = world);
  proxy = world.proxy!;
  proxy.redirectBlobs(true);
  Object.assign(process.env, {
    SOCI_REPOSITORY_FILTERS: 'team/*',
    SOCI_MIN_LAYER_SIZE: '100000',
    SOCI_SPAN_SIZE: '65536',
    SOCI_EVENT_BUS: 'pipelines',
    SOCI_DEADLINE_MARGIN_MS: '2000',
  });
  const layers = [
    {
      compression: 'gzip' as const,
      files: [
        { name: 'app/big.bin', size: 400_000 },
        { name: 'app/readme.txt', size: 2000 },
      ],
    },
    { compression: 'uncompressed' as const, files: [{ name: 'data/table.bin', size: 300_000 }] },
    { compression: 'gzip' as const, files: [{ name: 'etc/small.conf', size: 500 }] },
  ];
  single = await buildLayout({ layers, tag: 'v1' });
  multi = await buildLayout({
    layers: layers.slice(0, 2),
    tag: 'v2',
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ],
  });
  await pushLayout(multi, `${registry.host}/team/multi:v2`, { creds });
  multiRepo = new RegistryTarget({ registry: registry.host, repository: 'team/multi', credentials: async () => creds });
  // Imported only now: like Lambda, the module reads its configuration from the environment on load.
  handler = (await import('../../lambda/handler.ts')).handler;
});

after(() => world?.stop());

const pushOf = (repository: string, image: BuiltLayout, detail: Record<string, unknown> = {}) =>
  fixture(image.root.mediaType.includes('index') ? 'ecr-push-index' : 'ecr-push-image', {
    'repository-name': repository,
    'image-digest': image.root.digest,
    'image-tag': image.tag,
    ...detail,
  });

/** Pushes the single-platform image to its own repository (a test's private state); returns its target. */
async function pushSingle(repository: string): Promise<RegistryTarget> {
  await pushLayout(single, `${registry.host}/${repository}:v1`, { creds });
  return new RegistryTarget({ registry: registry.host, repository, credentials: async () => creds });
}

/** pushSingle, then one handler run that must create `v1-soci`; returns the target and that output. */
async function indexedSingle(repository: string): Promise<{ repo: RegistryTarget; output: Descriptor }> {
  const repo = await pushSingle(repository);
  const run = await capture(() => handler(pushOf(repository, single), lambdaContext()));
  assert.equal(run.value?.outcome, 'created', JSON.stringify(run.logs.slice(-3)));
  return { repo, output: await repo.resolve('v1-soci') };
}

async function json(target: RegistryTarget, desc: Descriptor): Promise<Record<string, any>> {
  return JSON.parse(Buffer.from(await target.fetchBytes(desc)).toString('utf8')) as Record<string, any>;
}

/** Walks a v2 output index; asserts every referenced manifest and blob exists; returns the zTOC digests. */
async function checkOutputIndex(target: RegistryTarget, index: Descriptor, sources: Descriptor[]): Promise<string[]> {
  const body = await json(target, index);
  const manifests = body.manifests as Descriptor[];
  const sociIndexes = manifests.filter((m) => m.artifactType === 'application/vnd.amazon.soci.index.v2+json');
  const images = manifests.filter((m) => m.artifactType === undefined);
  assert.equal(images.length, sources.length);
  assert.equal(sociIndexes.length, sources.length);
  const ztocs: string[] = [];
  for (const image of images) {
    assert.ok(await target.exists(image), image.digest);
    const manifest = await json(target, image);
    for (const blob of [manifest.config, ...manifest.layers] as Descriptor[]) assert.ok(await target.exists(blob), blob.digest);
    const sociDigest = manifest.annotations['com.amazon.soci.index-digest'] as string;
    const soci = sociIndexes.find((s) => s.digest === sociDigest);
    assert.ok(soci, `image ${image.digest} names SOCI index ${sociDigest}, which the index lists`);
    assert.equal(soci.annotations?.['com.amazon.soci.image-manifest-digest'], image.digest);
    const sociManifest = await json(target, soci);
    assert.ok(await target.exists(sociManifest.config));
    for (const ztoc of sociManifest.layers as Descriptor[]) {
      assert.ok(await target.exists(ztoc), ztoc.digest);
      ztocs.push(ztoc.digest);
    }
  }
  return ztocs;
}

describe('ECR push → SOCI index, end to end', () => {
  test('a push produces the -soci image index and a Created event whose digests match the registry', async () => {
    const repo = await pushSingle('team/app');
    const sent = events.events.length;
    const run = await capture(() => handler(pushOf('team/app', single), lambdaContext()));
    assert.equal(run.error, undefined, String(run.error));
    assert.equal(run.value?.outcome, 'created', JSON.stringify(run.logs.slice(-3)));

    const output = await repo.resolve('v1-soci');
    assert.equal(output.mediaType, 'application/vnd.oci.image.index.v1+json');
    const ztocs = await checkOutputIndex(repo, output, [single.root]);
    // The source is untouched.
    assert.equal((await repo.resolve('v1')).digest, single.root.digest);

    const created = events.events.slice(sent);
    assert.equal(created.length, 1);
    const { DetailType, Source, EventBusName, detail } = created[0]!;
    assert.deepEqual([DetailType, Source, EventBusName], ['SOCI Index Created', 'soci-indexer', 'pipelines']);
    assert.equal(detail.repository, 'team/app');
    assert.equal(detail.sourceDigest, single.root.digest);
    assert.equal(detail.sourceTag, 'v1');
    assert.equal(detail.outputTag, 'v1-soci');
    assert.equal(detail.outputDigest, output.digest);
    assert.equal(detail.indexVersion, 'v2');
    assert.deepEqual(detail.platforms, ['linux/amd64']);
    const layers = detail.layers as { digest: string; size: number; ztocDigest: string | null; skipReason: string | null }[];
    assert.deepEqual(
      layers.map((l) => l.digest),
      single.images[0]!.layers.map((l) => l.digest),
    );
    const indexed = layers.filter((l) => l.ztocDigest !== null);
    assert.equal(indexed.length, 2, 'the two layers above SOCI_MIN_LAYER_SIZE');
    assert.deepEqual(indexed.map((l) => l.ztocDigest).sort(), [...ztocs].sort());
    assert.match(layers[2]!.skipReason ?? '', /^below minimum layer size \(\d+ < 100000\)$/);
    assert.equal((layers[2] as { skipCode?: unknown }).skipCode, 'below-minimum-size');
    // Per-layer lines add platform and layer to the image context every line carries.
    const layerLines = run.logs.filter((l) => l.message === 'layer indexed' || l.message === 'layer skipped');
    assert.equal(layerLines.length, 3);
    for (const line of layerLines) {
      assert.equal(line.platform, 'linux/amd64');
      assert.ok(single.images[0]!.layers.some((l) => l.digest === line.layer));
    }
    for (const line of run.logs)
      assert.deepEqual([line.repository, line.digest, line.tag], ['team/app', single.root.digest, 'v1'], JSON.stringify(line));
    assert.equal(run.text.includes(password), false, 'credentials never reach the logs');
    assert.equal(run.text.includes(Buffer.from(`AWS:${password}`).toString('base64')), false);
  });

  test('a second delivery of the same event reports already indexed and pushes nothing', async () => {
    const { repo, output } = await indexedSingle('team/redelivered');
    const written = watchWrites(proxy.requests);
    const before = { tag: output.digest, sent: events.events.length };
    const run = await capture(() => handler(pushOf('team/redelivered', single), lambdaContext()));
    assert.equal(run.error, undefined, String(run.error));
    assert.equal(run.value?.outcome, 'skipped');
    assert.equal(run.value?.reason, 'already-indexed');
    assert.deepEqual(written(), [], 'no PUT/POST/PATCH reached the registry');
    assert.equal((await repo.resolve('v1-soci')).digest, before.tag);
    const skipped = events.events.slice(before.sent);
    assert.deepEqual(
      skipped.map((e) => [e.DetailType, e.detail.status, e.detail.outputDigest]),
      [['SOCI Index Skipped', 'already-indexed', before.tag]],
    );
  });

  test('a multi-platform push: the tagged index push indexes every platform, the untagged children do nothing', async () => {
    const sent = events.events.length;
    for (const child of multi.images) {
      const written = watchWrites(proxy.requests);
      const run = await capture(() =>
        handler(
          fixture('ecr-push-untagged-child', { 'repository-name': 'team/multi', 'image-digest': child.manifest.digest }),
          lambdaContext(),
        ),
      );
      assert.equal(run.value?.reason, 'untagged');
      assert.deepEqual(written(), []);
    }
    assert.equal(events.events.length, sent, 'untagged children emit no completion event');

    const run = await capture(() => handler(pushOf('team/multi', multi), lambdaContext()));
    assert.equal(run.value?.outcome, 'created', JSON.stringify(run.logs.slice(-3)));
    const output = await multiRepo.resolve('v2-soci');
    await checkOutputIndex(
      multiRepo,
      output,
      multi.images.map((i) => i.manifest),
    );
    const [created] = events.events.slice(sent);
    assert.equal(created?.DetailType, 'SOCI Index Created');
    assert.equal(created?.detail.outputDigest, output.digest);
    assert.deepEqual([...((created?.detail.platforms ?? []) as string[])].sort(), ['linux/amd64', 'linux/arm64/v8']);
  });

  test('our own output, pushes outside the filters and untagged manifests do nothing but log', async () => {
    await pushLayout(single, `${registry.host}/other/app:v1`, { creds });
    const { output } = await indexedSingle('team/own-output');
    const written = watchWrites(proxy.requests);
    const before = { sent: events.events.length, ecr: ecr.calls.length };
    const cases = [
      [pushOf('other/app', single), 'filtered-out'],
      [
        fixture('ecr-push-soci-output', { 'repository-name': 'team/own-output', 'image-digest': output.digest, 'image-tag': 'v1-soci' }),
        'own-output',
      ],
      [fixture('ecr-push-untagged-child', { 'repository-name': 'team/own-output', 'image-digest': single.root.digest }), 'untagged'],
    ] as const;
    for (const [event, reason] of cases) {
      const run = await capture(() => handler(event, lambdaContext()));
      assert.equal(run.error, undefined);
      assert.deepEqual([run.value?.outcome, run.value?.reason], ['skipped', reason]);
      assert.ok(
        run.logs.some((l) => l.reason === reason && l.repository !== undefined),
        JSON.stringify(run.logs),
      );
    }
    assert.deepEqual(written(), []);
    assert.equal(events.events.length, before.sent);
    assert.equal(ecr.calls.length, before.ecr, 'decided from the event alone');
    await assert.rejects(
      new RegistryTarget({ registry: registry.host, repository: 'other/app', credentials: async () => creds }).resolve('v1-soci'),
    );
  });

  test('the SOCI-enabled index pushed in place of a tag is recognised as our own output', async () => {
    // What ECR reports after an in-place run: the source tag now names our output index.
    const { repo, output } = await indexedSingle('team/in-place-output');
    await repo.tag(output, 'v1-inplace');
    const written = watchWrites(proxy.requests);
    const run = await capture(() =>
      handler(
        fixture('ecr-push-index', { 'repository-name': 'team/in-place-output', 'image-digest': output.digest, 'image-tag': 'v1-inplace' }),
        lambdaContext(),
      ),
    );
    assert.equal(run.error, undefined, String(run.error));
    assert.equal(run.value?.outcome, 'skipped');
    assert.equal(run.value?.reason, 'already-indexed', run.value?.reason);
    assert.deepEqual(written(), []);
  });

  test('bad events get a log line and a documented outcome; none throws', async () => {
    await pushSingle('team/bad-events');
    const cases: [unknown, string, string][] = [
      [pushOf('team/bad-events', single, { 'image-digest': undefined }), 'ignored', 'invalid-event'],
      [pushOf('team/bad-events', single, { 'image-tag': 7 }), 'ignored', 'invalid-event'],
      // A digest the registry does not have, under a tag that names another image.
      [pushOf('team/bad-events', single, { 'image-digest': `sha256:${'d'.repeat(64)}` }), 'skipped', 'superseded'],
      // A tag and digest that do not exist.
      [
        pushOf('team/bad-events', single, { 'image-digest': `sha256:${'d'.repeat(64)}`, 'image-tag': 'never-pushed' }),
        'skipped',
        'deleted',
      ],
      // A repository that was deleted (docker-registry answers MANIFEST_UNKNOWN, ECR NAME_UNKNOWN).
      [pushOf('team/deleted', single), 'skipped', 'deleted'],
    ];
    for (const [event, outcome, reason] of cases) {
      const run = await capture(() => handler(event, lambdaContext()));
      assert.equal(run.error, undefined, `${reason}: ${String(run.error)}`);
      assert.deepEqual([run.value?.outcome, run.value?.reason], [outcome, reason]);
      // The log line says what happened, with the same stable reason.
      const said =
        outcome === 'ignored'
          ? run.logs.filter((l) => l.message === 'dropped malformed ECR push event')
          : run.logs.filter((l) => l.reason === reason && String(l.message).startsWith('skipped: '));
      assert.equal(said.length, 1, `${reason}: ${JSON.stringify(run.logs)}`);
    }
  });

  test('work that cannot finish before the deadline fails transiently and tags nothing', async () => {
    await pushLayout(single, `${registry.host}/team/slow:v1`, { creds });
    // A blob read is throttled (503, Retry-After 10 s) against a deadline 5.5 s away (7.5 s remaining
    // minus the 2 s margin): the wait would pass the deadline, so it fails at once instead of sleeping.
    proxy.failNext(503, 1, { retryAfter: '10', method: 'GET', path: /^\/v2\/team\/slow\/blobs\// });
    const sent = events.events.length;
    const run = await capture(() => handler(pushOf('team/slow', single), lambdaContext(7_500)));
    assert.ok(run.error instanceof Error, 'a transient failure is thrown for Lambda to retry');
    assert.equal((run.error as { kind?: string }).kind, 'transient');
    assert.match((run.error as Error).message, /\(503 [^)]*\); not retried: the deadline is \d+ ms away$/);
    const slow = new RegistryTarget({ registry: registry.host, repository: 'team/slow', credentials: async () => creds });
    await assert.rejects(slow.resolve('v1-soci'), { name: 'RegistryError', kind: 'not-found' });
    assert.deepEqual(
      events.events.slice(sent).map((e) => [e.DetailType, e.detail.retryable]),
      [['SOCI Index Failed', true]],
    );
  });

  test('a poison image (its config past the 4 MiB limit) costs one run: permanent, not retried, nothing tagged', async () => {
    const poison = new RegistryTarget({ registry: registry.host, repository: 'team/poison', credentials: async () => creds });
    const layer = single.images[0]!.layers[0]!;
    await poison.push(layer, single.blobs.get(layer.digest)!);
    const configBytes = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, padding: 'x'.repeat(4 << 20) }),
    );
    const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256Digest(configBytes), size: configBytes.length };
    await poison.push(config, configBytes);
    const manifestBytes = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config, layers: [layer] }),
    );
    const manifest = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: sha256Digest(manifestBytes),
      size: manifestBytes.length,
    };
    await poison.push(manifest, manifestBytes);
    await poison.tag(manifest, 'v1');
    const sent = events.events.length;
    const run = await capture(() =>
      handler(
        fixture('ecr-push-image', { 'repository-name': 'team/poison', 'image-digest': manifest.digest, 'image-tag': 'v1' }),
        lambdaContext(),
      ),
    );
    assert.equal(run.error, undefined, 'returned normally: Lambda does not run it again');
    assert.equal(run.value?.outcome, 'failed');
    assert.deepEqual(
      events.events.slice(sent).map((e) => [e.DetailType, e.detail.retryable]),
      [['SOCI Index Failed', false]],
    );
    assert.match(
      String(events.events.at(-1)!.detail.reason),
      /image config: sha256:[0-9a-f]{64} is \d+ bytes, over the 4 MiB limit \(max-config-bytes\)/,
    );
    await assert.rejects(poison.resolve('v1-soci'), { name: 'RegistryError', kind: 'not-found' });
  });

  test('SOCI_ZTOC_CACHE: a second repository reuses the zTOCs by mount; the event and metrics say so', async () => {
    await pushLayout(single, `${registry.host}/team/cached-a:v1`, { creds });
    await pushLayout(single, `${registry.host}/team/cached-b:v1`, { creds });
    const cached = handlerFromEnvironment({ ...process.env, SOCI_ZTOC_CACHE: 'soci/ztoc-cache' }, buildSociIndex);
    const sent = events.events.length;
    const first = await capture(() => cached(pushOf('team/cached-a', single), lambdaContext()));
    assert.equal(first.value?.outcome, 'created', JSON.stringify(first.logs.slice(-3)));
    const mark = proxy.requests.length;
    const second = await capture(() => cached(pushOf('team/cached-b', single), lambdaContext()));
    assert.equal(second.value?.outcome, 'created', JSON.stringify(second.logs.slice(-3)));
    assert.equal(second.value?.outputDigest, first.value?.outputDigest, 'the same output as a build from the layers');

    const [a, b] = events.events.slice(sent).map((e) => e.detail.layers as { ztoc: string | null; size: number }[]);
    assert.deepEqual(
      a!.map((l) => l.ztoc),
      ['built', 'built', null],
    );
    assert.deepEqual(
      b!.map((l) => l.ztoc),
      ['reused', 'reused', null],
      JSON.stringify([...first.logs, ...second.logs].filter((l) => /warn/i.test(JSON.stringify(l)))),
    );
    const metric = (run: typeof first, name: string) =>
      metricValues(run.emf)
        .filter((m) => m.name === name)
        .map((m) => m.value);
    const saved = b!.slice(0, 2).reduce((n, l) => n + l.size, 0);
    assert.deepEqual([metric(first, 'LayersReused'), metric(first, 'BytesSaved')], [[0], [0]]);
    assert.deepEqual(
      [metric(second, 'LayersReused'), metric(second, 'BytesSaved'), metric(second, 'BytesRead'), metric(second, 'ZtocCacheFailures')],
      [[2], [saved], [0], [0]],
    );
    // No layer of team/cached-b was read; the zTOCs were mounted from the cache repository.
    const requests = proxy.requests.slice(mark);
    assert.deepEqual(
      requests.filter((r) => r.method === 'GET' && single.images[0]!.layers.some((l) => r.path.endsWith(l.digest))),
      [],
    );
    assert.equal(
      requests.filter(
        (r) =>
          r.method === 'POST' &&
          r.path === '/v2/team/cached-b/blobs/uploads/' &&
          r.search.includes('from=soci%2Fztoc-cache') &&
          r.status === 201,
      ).length,
      2,
    );
    await checkOutputIndex(
      new RegistryTarget({ registry: registry.host, repository: 'team/cached-b', credentials: async () => creds }),
      await new RegistryTarget({ registry: registry.host, repository: 'team/cached-b', credentials: async () => creds }).resolve('v1-soci'),
      [single.root],
    );
  });

  test('SOCI_ZTOC_CACHE: an invocation stopped at its deadline is retried and reads only the layers not yet built', async () => {
    const three = await buildLayout({
      layers: ['a', 'b', 'c'].map((name) => ({ compression: 'gzip' as const, files: [{ name: `layer-${name}.bin`, size: 200_000 }] })),
      tag: 'v1',
    });
    await pushLayout(three, `${registry.host}/team/resume:v1`, { creds });
    const layers = three.images[0]!.layers;
    let stopEarly = true;
    // The first invocation's deadline is (all but) reached once its first layer is done, as when an
    // image is too big for one invocation; the retry (the same event) gets the whole time.
    const build = (source: Parameters<typeof buildSociIndex>[0], reference: string, options: BuildOptions) => {
      const wrapped: BuildOptions = {
        ...options,
        onEvent: (e) => {
          options.onEvent?.(e);
          if (stopEarly && e.type === 'layer-done') wrapped.deadline = Date.now() + 100;
        },
      };
      return buildSociIndex(source, reference, wrapped);
    };
    const resuming = handlerFromEnvironment({ ...process.env, SOCI_ZTOC_CACHE: 'soci/resume-cache', SOCI_CONCURRENCY: '1' }, build);
    const sent = events.events.length;
    const stopped = await capture(() => resuming(pushOf('team/resume', three), lambdaContext()));
    assert.equal((stopped.error as { kind?: string } | undefined)?.kind, 'transient', 'thrown for Lambda to retry');
    assert.match((stopped.error as Error).message, /^deadline: /);
    stopEarly = false;
    // What the first invocation finished is what its cache holds. Which layers those are is not fixed: a
    // miss starts building as soon as its own cache lookup answers, and the three lookups race; a layer
    // may also be stored just before the deadline stops the run, after the last layer-done.
    const cached = await cachedLayerDigests(
      new OciRegistryListing({ registry: registry.host, credentials: async () => creds }),
      'soci/resume-cache',
    );
    const builtFirst = new Set(layers.filter((l) => cached.has(l.digest)).map((l) => l.digest));
    assert.ok(
      builtFirst.size >= 1 && builtFirst.size < layers.length,
      `the first invocation cached ${builtFirst.size} of ${layers.length} zTOCs`,
    );
    const retried = await capture(() => resuming(pushOf('team/resume', three), lambdaContext()));
    assert.equal(retried.value?.outcome, 'created', JSON.stringify(retried.logs.slice(-3)));
    const [failed, created] = events.events.slice(sent);
    assert.deepEqual(
      [failed!.DetailType, failed!.detail.retryable, created!.DetailType],
      ['SOCI Index Failed', true, 'SOCI Index Created'],
    );
    // Exactly the layers finished before the deadline are reused; only the rest are read.
    assert.deepEqual(
      (created!.detail.layers as { digest: string; ztoc: string }[]).map((l) => [l.digest, l.ztoc]),
      layers.map((l) => [l.digest, builtFirst.has(l.digest) ? 'reused' : 'built']),
    );
    assert.deepEqual(
      metricValues(retried.emf)
        .filter((m) => m.name === 'BytesRead')
        .map((m) => m.value),
      [layers.filter((l) => !builtFirst.has(l.digest)).reduce((n, l) => n + l.size, 0)],
    );
    // The same output as an uninterrupted build of the image.
    const scratch = await buildSociIndex(await OciLayoutTarget.open(three.dir), 'v1', {
      ...DEFAULT_BUILD_OPTIONS,
      minLayerSize: 100_000,
      spanSize: 65536,
      dryRun: true,
    });
    assert.equal(created!.detail.outputDigest, scratch.output?.digest);
  });

  test('v1: the SOCI index manifest is attached to the image through the referrers API', async () => {
    await pushLayout(single, `${registry.host}/team/legacy:v1`, { creds });
    const v1 = handlerFromEnvironment({ ...process.env, SOCI_INDEX_VERSION: 'v1' }, buildSociIndex);
    const sent = events.events.length;
    const run = await capture(() => v1(pushOf('team/legacy', single), lambdaContext()));
    assert.equal(run.value?.outcome, 'created', JSON.stringify(run.logs.slice(-3)));
    const legacy = new RegistryTarget({ registry: proxy.host, repository: 'team/legacy', credentials: async () => creds });
    const referrers = await legacy.referrers(single.root, 'application/vnd.amazon.soci.index.v1+json');
    const [created] = events.events.slice(sent);
    assert.equal(created?.detail.indexVersion, 'v1');
    assert.equal(created?.detail.outputTag, null);
    assert.deepEqual(
      referrers.map((r) => r.digest),
      [created?.detail.outputDigest],
    );
    const sociManifest = await json(legacy, referrers[0]!);
    assert.equal(sociManifest.subject.digest, single.root.digest);
  });

  test('SOCI_IN_PLACE on the golden image: the source tag now names the golden SOCI-enabled index, byte for byte', async () => {
    const { dir } = await copyLayout(goldenLayoutDir());
    await pushLayout({ dir, tag: 'golden' }, `${registry.host}/team/golden:golden`, { creds });
    const source = await new RegistryTarget({ registry: registry.host, repository: 'team/golden', credentials: async () => creds }).resolve(
      'golden',
    );
    const inPlace = handlerFromEnvironment(
      {
        ...process.env,
        SOCI_IN_PLACE: 'true',
        SOCI_SPAN_SIZE: '4194304',
        SOCI_MIN_LAYER_SIZE: '1048576',
        SOCI_BUILD_TOOL_ID: 'AWS SOCI CLI v0.2',
      },
      buildSociIndex,
    );
    const event = fixture('ecr-push-image', { 'repository-name': 'team/golden', 'image-digest': source.digest, 'image-tag': 'golden' });
    const run = await capture(() => inPlace(event, lambdaContext()));
    assert.equal(run.error, undefined, String(run.error));
    const goldenIndex = await readFile(goldenPath('index', 'a-span4m-min1MiB', 'converted-oci-index.json'));
    const expected = `sha256:${sha256Hex(goldenIndex)}`;
    assert.deepEqual([run.value?.outcome, run.value?.outputTag, run.value?.outputDigest], ['created', 'golden', expected]);
    const golden = new RegistryTarget({ registry: registry.host, repository: 'team/golden', credentials: async () => creds });
    const tagged = await golden.resolve('golden');
    assert.equal(tagged.digest, expected);
    assert.ok(Buffer.from(await golden.fetchBytes(tagged)).equals(goldenIndex));
    await assert.rejects(golden.resolve('golden-soci'), { name: 'RegistryError', kind: 'not-found' });
  });
});
