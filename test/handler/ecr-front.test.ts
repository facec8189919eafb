// The Lambda (handlerFromEnvironment with the real core and registry client) against an Amazon ECR-like
// front (test/support/ecr-front.ts) over docker-registry, with a loopback GetAuthorizationToken naming
// the front as proxyEndpoint: throttled manifest PUTs are retried, logged and counted (`Throttled`);
// in a tag-immutable repository a rerun is already indexed and in-place fails permanently in one line.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { handlerFromEnvironment } from '../../lambda/handler/wiring.ts';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { buildSociIndex } from '../../lambda/soci/build.ts';
import type { EcrFront } from '../support/ecr-front.ts';
import { type HandlerWorld, startHandlerWorld } from '../support/handler-world.ts';
import { type BuiltLayout, buildLayout, pushLayout } from '../support/images.ts';
import type { RunningRegistry } from '../support/registry.ts';
import { capture, fixture, lambdaContext, metricValues } from './helpers.ts';

const password = 'ecr-front-handler-pw';
const creds = { username: 'AWS', password };

describe('the Lambda against an ECR-like front', () => {
  let world: HandlerWorld;
  let registry: RunningRegistry;
  let front: EcrFront;
  let image: BuiltLayout;
  const env = (extra: Record<string, string> = {}) => ({
    SOCI_REPOSITORY_FILTERS: 'team/*',
    SOCI_MIN_LAYER_SIZE: '100000',
    SOCI_SPAN_SIZE: '65536',
    SOCI_DEADLINE_MARGIN_MS: '2000',
    ...extra,
  });
  const pushOf = (repository: string) =>
    fixture('ecr-push-image', { 'repository-name': repository, 'image-digest': image.root.digest, 'image-tag': image.tag });
  const direct = (repository: string) => new RegistryTarget({ registry: registry.host, repository, credentials: async () => creds });

  before(async () => {
    world = await startHandlerWorld({ password, ecrFront: { immutable: { 'team/locked': [], 'team/locked-in-place': [] } } });
    registry = world.registry;
    front = world.front!;
    image = await buildLayout({ layers: [{ compression: 'gzip', files: [{ name: 'app/big.bin', size: 300_000 }] }], tag: 'v1' });
    for (const repository of ['team/throttled', 'team/locked', 'team/locked-in-place'])
      await pushLayout(image, `${registry.host}/${repository}:v1`, { creds });
  });
  after(() => world?.stop());

  test('throttled manifest PUTs are backed off, logged, and counted in the Throttled metric', async () => {
    const handler = handlerFromEnvironment(env(), buildSociIndex);
    front.proxy.failNext(429, 2, { method: 'PUT', path: /^\/v2\/team\/throttled\/manifests\// });
    const run = await capture(() => handler(pushOf('team/throttled'), lambdaContext()));
    assert.equal(run.error, undefined, String(run.error));
    assert.equal(run.value?.outcome, 'created', JSON.stringify(run.logs.slice(-3)));
    const backoffs = run.logs.filter((l) => l.message === 'registry throttled a request, backing off');
    assert.equal(backoffs.length, 2);
    assert.match(String(backoffs[0]!.error), /push manifest team\/throttled\S* failed \(429 TOOMANYREQUESTS\)/);
    assert.deepEqual(
      metricValues(run.emf)
        .filter((m) => m.name === 'Throttled')
        .map((m) => m.value),
      [2],
    );
    assert.equal((await direct('team/throttled').resolve('v1-soci')).digest, run.value?.outputDigest);
  });

  test('no throttling, no Throttled metric', async () => {
    // A repository of its own, built from scratch: every manifest PUT goes through unthrottled.
    await pushLayout(image, `${registry.host}/team/calm:v1`, { creds });
    const handler = handlerFromEnvironment(env(), buildSociIndex);
    const run = await capture(() => handler(pushOf('team/calm'), lambdaContext()));
    assert.equal(run.value?.outcome, 'created', JSON.stringify(run.logs.slice(-3)));
    assert.deepEqual(
      metricValues(run.emf).filter((m) => m.name === 'Throttled'),
      [],
    );
  });

  test('tag-immutable repository: the rerun is already indexed; in-place fails permanently in one line', async () => {
    const handler = handlerFromEnvironment(env(), buildSociIndex);
    const first = await capture(() => handler(pushOf('team/locked'), lambdaContext()));
    assert.equal(first.value?.outcome, 'created', JSON.stringify(first.logs.slice(-3)));
    const rerun = await capture(() => handler(pushOf('team/locked'), lambdaContext()));
    assert.equal(rerun.value?.outcome, 'skipped');
    assert.equal(rerun.value?.reason, 'already-indexed');

    const inPlace = handlerFromEnvironment(env({ SOCI_IN_PLACE: 'true' }), buildSociIndex);
    const refused = await capture(() => inPlace(pushOf('team/locked-in-place'), lambdaContext()));
    assert.equal(refused.error, undefined, 'a permanent failure is returned, not thrown (no Lambda retry)');
    assert.equal(refused.value?.outcome, 'failed');
    assert.equal(refused.value?.reason, 'permanent');
    assert.equal(refused.value?.message.split('\n').length, 1);
    assert.match(refused.value!.message, /tag team\/locked-in-place:v1 is immutable \(400 TAG_INVALID\).*IMMUTABLE_WITH_EXCLUSION/);
    assert.equal((await direct('team/locked-in-place').resolve('v1')).digest, image.root.digest);
  });
});
