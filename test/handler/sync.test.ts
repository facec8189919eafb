// The scheduled sync in AWS, end to end on loopback: the real sync handler (configured from the
// environment, as in Lambda) lists through a fake of the ECR API (DescribeRepositories, DescribeImages,
// BatchDeleteImage, GetAuthorizationToken naming a real docker-registry), reads manifests from that
// registry, and fans out through a fake of Lambda's Invoke; the invocations it sends are then handed to
// the real indexer handler, which must index them as the push events they claim to be.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import type { SyncSummary } from '../../lambda/handler/sync.ts';
import { syncHandlerFromEnvironment } from '../../lambda/handler/sync-wiring.ts';
import { handlerFromEnvironment } from '../../lambda/handler/wiring.ts';
import { buildSociIndex } from '../../lambda/soci/build.ts';
import type { FakeAwsServer, FakeEventBridge, FakeLambda } from '../support/fake-aws.ts';
import { type HandlerWorld, startHandlerWorld } from '../support/handler-world.ts';
import { type BuiltLayout, buildLayout, pushLayout } from '../support/images.ts';
import type { RunningRegistry } from '../support/registry.ts';
import { capture, lambdaContext, metricValues } from './helpers.ts';

const password = 'sync-ecr-password-9f8e7d';
const creds = { username: 'AWS', password };

let world: HandlerWorld;
let registry: RunningRegistry;
let ecr: FakeAwsServer;
let events: FakeEventBridge;
let lambda: FakeLambda;
const images: BuiltLayout[] = [];
/** What the fake ECR API lists: kept in step with the registry by the test. */
const listed = new Map<string, { digest: string; tags: string[] }[]>();

const ENV = {
  SOCI_REPOSITORY_FILTERS: 'team/*',
  SOCI_MIN_LAYER_SIZE: '0',
  SOCI_EVENT_BUS: 'pipelines',
  SOCI_SYNC_FUNCTION: 'soci-indexer-fn',
  SOCI_DEADLINE_MARGIN_MS: '2000',
};

before(async () => {
  world = await startHandlerWorld({ password, repositories: listed, lambda: true });
  ({ registry, ecr, events } = world);
  lambda = world.lambda!;
  for (let i = 0; i < 3; i++) {
    images.push(
      await buildLayout({
        layers: [{ compression: 'gzip', files: [{ name: 'bin/app', size: 120_000, seed: `sync image ${i}` }] }],
        tag: 'latest',
      }),
    );
  }
});

after(() => world?.stop());

// Each test lists only its own repositories: the fake ECR API starts every test with an empty listing, so
// no sync sees (or counts) what an earlier test pushed. Repository names are never shared between tests.
beforeEach(() => listed.clear());

/** Pushes to the registry and records the tag in the fake ECR listing. */
async function push(image: BuiltLayout, repository: string, tag: string): Promise<void> {
  await pushLayout(image, `${registry.host}/${repository}:${tag}`, { creds });
  record(repository, tag, image.root.digest);
}

function record(repository: string, tag: string, digest: string): void {
  const images = listed.get(repository) ?? [];
  for (const i of images) i.tags = i.tags.filter((t) => t !== tag);
  const entry = images.find((i) => i.digest === digest);
  if (entry) entry.tags.push(tag);
  else images.push({ digest, tags: [tag] });
  listed.set(repository, images);
}

function runSync(env: Record<string, string> = {}) {
  const handler = syncHandlerFromEnvironment({ ...process.env, ...ENV, ...env }, { backoffBaseMs: 5 });
  return capture(() => handler({ source: 'aws.events', 'detail-type': 'Scheduled Event' }, lambdaContext()));
}

/** Hands every invocation sent so far to the real indexer handler; records the output tags it wrote. */
async function deliverInvocations(from: number): Promise<string[]> {
  const indexer = handlerFromEnvironment({ ...process.env, ...ENV }, buildSociIndex);
  const outcomes: string[] = [];
  for (const invocation of lambda.invocations.slice(from)) {
    const result = await capture(() => indexer(invocation.payload, lambdaContext()));
    assert.equal(result.error, undefined);
    outcomes.push(result.value!.outcome);
    const detail = (invocation.payload as { detail: Record<string, string> }).detail;
    if (result.value!.outputTag) record(detail['repository-name']!, result.value!.outputTag, result.value!.outputDigest!);
  }
  return outcomes;
}

describe('scheduled sync (Lambda) against fakes of the ECR API and Lambda Invoke', () => {
  test('backfill fans out one push event per image of the allow-list; a rerun plans nothing and invokes nothing', async () => {
    await push(images[0]!, 'team/app', 'v1');
    await push(images[1]!, 'team/app', 'v2');
    await push(images[2]!, 'team/web', 'v1');
    await push(images[0]!, 'other/svc', 'v1');

    const from = { invocations: lambda.invocations.length, events: events.events.length };
    const first = await runSync();
    assert.equal(first.error, undefined, String(first.error));
    const summary = first.value as SyncSummary;
    assert.equal(summary.repositories, 2);
    assert.deepEqual(
      { create: summary.counts.create, invoked: summary.invoked, failures: summary.failures },
      { create: 3, invoked: 3, failures: [] },
    );
    const invocations = lambda.invocations.slice(from.invocations);
    assert.equal(invocations.length, 3);
    for (const invocation of invocations) {
      assert.equal(invocation.functionName, 'soci-indexer-fn');
      assert.equal(invocation.invocationType, 'Event');
      const event = invocation.payload as { source: string; 'detail-type': string; account: string; detail: Record<string, string> };
      assert.equal(event.source, 'aws.ecr');
      assert.equal(event['detail-type'], 'ECR Image Action');
      assert.equal(event.account, '123456789012');
      assert.match(event.detail['repository-name']!, /^team\//);
    }
    const sent = invocations
      .map((i) => (i.payload as { detail: Record<string, string> }).detail)
      .map((d) => `${d['repository-name']}:${d['image-tag']}@${d['image-digest']}`)
      .sort();
    assert.deepEqual(sent, [
      `team/app:v1@${images[0]!.root.digest}`,
      `team/app:v2@${images[1]!.root.digest}`,
      `team/web:v1@${images[2]!.root.digest}`,
    ]);
    assert.deepEqual(
      await deliverInvocations(from.invocations),
      ['created', 'created', 'created'],
      'the indexer indexes what the sync sent',
    );

    const completion = events.events.slice(from.events).find((e) => e.DetailType === 'SOCI Sync Completed');
    assert.ok(completion);
    assert.equal(completion.Source, 'soci-indexer');
    assert.equal(completion.EventBusName, 'pipelines');
    assert.equal((completion.detail.counts as Record<string, number>).create, 3);
    // One SyncItems value per action (dimension `action`), the same numbers as the summary; invocations sent.
    const items = Object.fromEntries(first.emf.filter((blob) => 'SyncItems' in blob).map((blob) => [blob.action, blob.SyncItems]));
    assert.deepEqual(items, { ...summary.counts });
    assert.equal(items.create, 3);
    assert.deepEqual(
      metricValues(first.emf)
        .filter((m) => m.name === 'SyncInvocations')
        .map((m) => m.value),
      [3],
    );

    const before = lambda.invocations.length;
    const rerun = await runSync();
    const again = rerun.value as SyncSummary;
    assert.deepEqual(
      { upToDate: again.counts['up-to-date'], create: again.counts.create, repair: again.counts.repair, invoked: again.invoked },
      { upToDate: 3, create: 0, repair: 0, invoked: 0 },
    );
    assert.equal(lambda.invocations.length, before, 'no invocation on a rerun');
  });

  test('throttled DescribeImages and Invoke calls are retried with backoff; a moved tag is repaired', async () => {
    await push(images[0]!, 'team/throttle', 'v1');
    const from = lambda.invocations.length;
    await runSync();
    assert.deepEqual(await deliverInvocations(from), ['created']);
    await push(images[1]!, 'team/throttle', 'v1'); // the tag moves

    ecr.fail('DescribeImages', { status: 400, type: 'ThrottlingException', message: 'Rate exceeded' }, 2);
    lambda.throttle(2);
    const before = lambda.invocations.length;
    const requestsBefore = lambda.requests;
    const run = await runSync();
    assert.equal(run.error, undefined, String(run.error));
    const summary = run.value as SyncSummary;
    assert.equal(summary.failures.length, 0, JSON.stringify(summary.failures));
    assert.equal(summary.calls['DescribeImages throttled'], 2);
    assert.equal(summary.counts.repair, 1);
    assert.equal(lambda.invocations.length, before + 1, 'one invocation, after two throttled attempts');
    assert.equal(lambda.requests, requestsBefore + 3);
    const detail = (lambda.invocations.at(-1)!.payload as { detail: Record<string, string> }).detail;
    assert.deepEqual(
      [detail['repository-name'], detail['image-tag'], detail['image-digest']],
      ['team/throttle', 'v1', images[1]!.root.digest],
    );
    assert.deepEqual(await deliverInvocations(before), ['created']);
  });

  test('prune is opt-in; it untags <tag>-soci of a deleted tag with BatchDeleteImage, and never a tag that is not ours', async () => {
    const repo = 'team/prune';
    await push(images[0]!, repo, 'keep');
    await push(images[1]!, repo, 'gone');
    await push(images[2]!, repo, 'mine-soci'); // a user's own image under an output-looking tag
    const from = lambda.invocations.length;
    await runSync();
    await deliverInvocations(from);

    // `gone` is deleted: from the registry and from ECR's listing.
    await fetch(`${registry.url}/v2/${repo}/manifests/${images[1]!.root.digest}`, {
      method: 'DELETE',
      headers: { authorization: `Basic ${Buffer.from(`AWS:${password}`).toString('base64')}` },
    });
    listed.set(
      repo,
      listed.get(repo)!.map((i) => ({ ...i, tags: i.tags.filter((t) => t !== 'gone') })),
    );

    const deletesBefore = ecr.calls.filter((c) => c.operation === 'BatchDeleteImage').length;
    const withoutPrune = (await runSync()).value as SyncSummary;
    assert.equal(withoutPrune.counts.prune, 0);
    assert.equal(ecr.calls.filter((c) => c.operation === 'BatchDeleteImage').length, deletesBefore);

    const pruned = (await runSync({ SOCI_SYNC_PRUNE: 'true' })).value as SyncSummary;
    assert.equal(pruned.counts.prune, 1);
    assert.equal(pruned.pruned, 1);
    const deletes = ecr.calls.filter((c) => c.operation === 'BatchDeleteImage').slice(deletesBefore);
    assert.deepEqual(
      deletes.map((c) => c.body),
      [{ repositoryName: repo, imageIds: [{ imageTag: 'gone-soci' }], registryId: undefined }].map(({ registryId: _, ...b }) => b),
    );
    const tags = listed
      .get(repo)!
      .flatMap((i) => i.tags)
      .sort();
    assert.deepEqual(tags, ['keep', 'keep-soci', 'mine-soci']);
  });

  test('a bad SOCI_SYNC_FUNCTION fails the cold start with one line naming it', async () => {
    const result = await capture(async () => syncHandlerFromEnvironment({ ...process.env, ...ENV, SOCI_SYNC_FUNCTION: '' }));
    assert.match(String((result.error as Error).message), /^SOCI_SYNC_FUNCTION: expected the indexer function's name or ARN/);
    assert.ok(result.logs.some((l) => String(l.message).startsWith('invalid configuration: SOCI_SYNC_FUNCTION')));
  });
});
