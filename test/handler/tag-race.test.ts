// The push race through the Lambda handler (real core, registry client, SDK clients against the loopback
// ECR and EventBridge fakes): D1's event passes the pre-build check, then the test proxy holds the reads of
// D1's layer while D2 is pushed to the same tag (and, in suffix mode, D2's own event is handled to the
// end). Released, D1's invocation must tag nothing and report the same skip as the pre-build check:
// outcome `skipped`, reason `superseded`, a `SOCI Index Skipped` event, ImagesSkipped{reason=superseded}.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { handlerFromEnvironment } from '../../lambda/handler/wiring.ts';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { buildSociIndex } from '../../lambda/soci/build.ts';
import type { FakeEventBridge } from '../support/fake-aws.ts';
import type { FaultProxy } from '../support/fault-proxy.ts';
import { type HandlerWorld, startHandlerWorld } from '../support/handler-world.ts';
import { type BuiltLayout, buildLayout, pushLayout } from '../support/images.ts';
import type { RunningRegistry } from '../support/registry.ts';
import { capture, fixture, lambdaContext, metricValues } from './helpers.ts';

const password = 'race-ecr-password-1a2b3c';
const creds = { username: 'AWS', password };

let world: HandlerWorld;
let registry: RunningRegistry;
let proxy: FaultProxy;
let events: FakeEventBridge;
let d1: BuiltLayout;
let d2: BuiltLayout;

before(async () => {
  world = await startHandlerWorld({ password, proxy: {} });
  ({ registry, events } = world);
  proxy = world.proxy!;
  const image = (seed: string) =>
    buildLayout({ layers: [{ compression: 'gzip', files: [{ name: 'app/data.bin', size: 200_000, seed }] }], tag: 'v1' });
  d1 = await image('first push');
  d2 = await image('second push');
});

after(() => world?.stop());

const env = (extra: Record<string, string> = {}) => ({
  SOCI_REPOSITORY_FILTERS: 'race/*',
  SOCI_MIN_LAYER_SIZE: '0',
  SOCI_SPAN_SIZE: '65536',
  SOCI_EVENT_BUS: 'pipelines',
  SOCI_DEADLINE_MARGIN_MS: '2000',
  POWERTOOLS_METRICS_NAMESPACE: 'SociRace',
  ...extra,
});
const pushOf = (repository: string, image: BuiltLayout) =>
  fixture('ecr-push-image', { 'repository-name': repository, 'image-digest': image.root.digest, 'image-tag': 'v1' });
const layerOf = (image: BuiltLayout) => image.images[0]!.layers[0]!.digest;
const repo = (repository: string) => new RegistryTarget({ registry: registry.host, repository, credentials: async () => creds });

async function tagDigest(repository: string, tag: string): Promise<string | undefined> {
  try {
    return (await repo(repository).resolve(tag)).digest;
  } catch (err) {
    if ((err as { notFound?: boolean }).notFound) return undefined;
    throw err;
  }
}

describe('the pushed tag moves while the handler builds', () => {
  test('suffix mode: D2 indexed meanwhile keeps v1-soci; D1 is skipped as superseded with its event and metric', async () => {
    const repository = 'race/suffix';
    const handler = handlerFromEnvironment(env(), buildSociIndex);
    await pushLayout(d1, `${registry.host}/${repository}:v1`, { creds });
    const sent = events.events.length;
    const hold = proxy.holdBlob(layerOf(d1));
    const late = capture(() => handler(pushOf(repository, d1), lambdaContext()));
    await hold.held;

    await pushLayout(d2, `${registry.host}/${repository}:v1`, { creds });
    const second = await capture(() => handler(pushOf(repository, d2), lambdaContext()));
    assert.equal(second.value?.outcome, 'created', String(second.error ?? JSON.stringify(second.logs.slice(-3))));
    const d2Output = second.value!.outputDigest!;
    assert.equal(await tagDigest(repository, 'v1-soci'), d2Output);

    hold.release();
    const first = await late;
    assert.equal(first.error, undefined, String(first.error));
    assert.equal(first.value?.outcome, 'skipped');
    assert.equal(first.value?.reason, 'superseded');
    assert.match(first.value!.message, new RegExp(`source tag v1 now names ${d2.root.digest}`));
    assert.equal(first.value?.outputTag, undefined);
    assert.equal(await tagDigest(repository, 'v1-soci'), d2Output, "D1's late build did not repoint v1-soci");
    assert.equal(await tagDigest(repository, 'v1'), d2.root.digest);

    const completions = events.events.slice(sent).map((e) => [e.DetailType, e.detail.status, e.detail.sourceDigest, e.detail.outputTag]);
    assert.deepEqual(completions, [
      ['SOCI Index Created', 'created', d2.root.digest, 'v1-soci'],
      ['SOCI Index Skipped', 'superseded', d1.root.digest, null],
    ]);
    assert.deepEqual(
      metricValues(first.emf)
        .filter((m) => m.name === 'ImagesSkipped')
        .map((m) => m.reason),
      ['superseded'],
    );
    assert.ok(
      first.logs.some((l) => l.level === 'INFO' && String(l.message).startsWith('skipped: superseded') && l.reason === 'superseded'),
      JSON.stringify(first.logs.slice(-3)),
    );
  });

  test('in place: the tag D2 took is never replaced with converted D1', async () => {
    const repository = 'race/in-place';
    const handler = handlerFromEnvironment(env({ SOCI_IN_PLACE: 'true' }), buildSociIndex);
    await pushLayout(d1, `${registry.host}/${repository}:v1`, { creds });
    const sent = events.events.length;
    const hold = proxy.holdBlob(layerOf(d1));
    const late = capture(() => handler(pushOf(repository, d1), lambdaContext()));
    await hold.held;
    await pushLayout(d2, `${registry.host}/${repository}:v1`, { creds });
    hold.release();

    const first = await late;
    assert.equal(first.value?.outcome, 'skipped', String(first.error ?? first.value?.message));
    assert.equal(first.value?.reason, 'superseded');
    assert.equal(await tagDigest(repository, 'v1'), d2.root.digest, 'the newer push still owns v1');
    assert.deepEqual(
      events.events.slice(sent).map((e) => [e.DetailType, e.detail.status]),
      [['SOCI Index Skipped', 'superseded']],
    );
    assert.deepEqual(
      metricValues(first.emf)
        .filter((m) => m.name === 'ImagesSkipped')
        .map((m) => m.reason),
      ['superseded'],
    );
  });
});
