// Outcome semantics of the handler: everything real (event validation, ECR token through the SDK and a
// loopback awsJson1.1 server, registry client against docker-registry with basic auth, completion events
// through the SDK, Powertools logs and EMF) except the soci core, which is injected through the handler's
// own `build` seam so that each core outcome (created, skipped, permanent and transient failures) can be
// produced on demand.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { BuildFn } from '../../lambda/handler/invoke.ts';
import { handlerFromEnvironment } from '../../lambda/handler/wiring.ts';
import { LimitExceededError } from '../../lambda/oci/errors.ts';
import { RegistryError } from '../../lambda/registry/errors.ts';
import { LayerIndexError } from '../../lambda/soci/layer-pool.ts';
import { type BuildOptions, type BuildResult, SociError } from '../../lambda/soci/types.ts';
import type { FakeAwsServer, FakeEventBridge } from '../support/fake-aws.ts';
import { type HandlerWorld, startHandlerWorld } from '../support/handler-world.ts';
import { type BuiltLayout, buildLayout, pushLayout } from '../support/images.ts';
import type { RunningRegistry } from '../support/registry.ts';
import { capture, fixture, lambdaContext, metricValues } from './helpers.ts';

const password = 'ecr-token-secret-9f8e7d';

let world: HandlerWorld;
let registry: RunningRegistry;
let ecr: FakeAwsServer;
let events: FakeEventBridge;
let image: BuiltLayout;
let digest: string;

before(async () => {
  world = await startHandlerWorld({ password });
  ({ registry, ecr, events } = world);
  process.env.AWS_MAX_ATTEMPTS = '1';
  image = await buildLayout({ layers: [{ compression: 'gzip', files: [{ name: 'a.bin', size: 4096 }] }], tag: 'v1' });
  await pushLayout(image, `${registry.host}/team/app:v1`, { creds: world.creds });
  digest = image.root.digest;
});

after(() => world?.stop());

const baseEnv = { SOCI_REPOSITORY_FILTERS: 'team/*', SOCI_EVENT_BUS: 'pipelines', POWERTOOLS_METRICS_NAMESPACE: 'SociTest' };

function result(status: BuildResult['status'], options: BuildOptions): BuildResult {
  return {
    status,
    message:
      status === 'created'
        ? 'indexed 1 layer'
        : status === 'no-eligible-layers'
          ? 'no layer at or above the minimum size'
          : status.replace(/-/g, ' '),
    source: { reference: 'v1', digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', tag: 'v1' },
    indexVersion: options.indexVersion,
    output:
      status === 'created' || status === 'already-indexed'
        ? { digest: `sha256:${'e'.repeat(64)}`, mediaType: 'application/vnd.oci.image.index.v1+json', tags: ['v1-soci'] }
        : undefined,
    platforms: [
      {
        platform: 'linux/amd64',
        manifestDigest: digest,
        layers: [
          {
            digest: image.images[0]!.layers[0]!.digest,
            mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
            size: 100,
            status: 'indexed',
            ztocDigest: `sha256:${'f'.repeat(64)}`,
          },
          {
            digest: `sha256:${'0'.repeat(64)}`,
            mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd',
            size: 100,
            status: 'skipped',
            reason: 'zstd is not indexable',
            skipCode: 'unsupported-format',
          },
        ],
      },
    ],
    bytesRead: 4242,
    ztocBytes: 321,
    durationMs: 10,
    dryRun: false,
  };
}

/** A core stand-in that records its calls and answers with `answer`. */
function fakeCore(answer: (options: BuildOptions) => Promise<BuildResult>) {
  const calls: { reference: string; options: BuildOptions; source: string }[] = [];
  const build: BuildFn = async (source, reference, options) => {
    calls.push({ reference, options, source: source.description });
    return answer(options);
  };
  return { build, calls };
}

const pushEvent = (detail: Record<string, unknown> = {}) =>
  fixture('ecr-push-image', { 'image-digest': digest, 'image-tag': 'v1', ...detail });

describe('handler outcomes', () => {
  test('created: builds the pushed tag with the configured options and reports the output', async () => {
    const core = fakeCore(async (o) => result('created', o));
    const handler = handlerFromEnvironment({ ...baseEnv, SOCI_SPAN_SIZE: '65536', SOCI_DEADLINE_MARGIN_MS: '20000' }, core.build);
    const before = events.events.length;
    const run = await capture(() => handler(pushEvent(), lambdaContext(600_000)));
    assert.equal(run.error, undefined);
    assert.deepEqual(run.value, {
      outcome: 'created',
      reason: 'created',
      message: 'indexed 1 layer',
      outputTag: 'v1-soci',
      outputDigest: `sha256:${'e'.repeat(64)}`,
    });

    assert.equal(core.calls.length, 1);
    const { reference, options, source } = core.calls[0]!;
    // Pinned to the pushed digest; the tag names the output.
    assert.equal(reference, `v1@${digest}`);
    assert.equal(source, `${registry.host}/team/app`);
    assert.equal(options.spanSize, 65536);
    assert.equal(options.minLayerSize, 10485760);
    assert.deepEqual(options.tagPolicy, { mode: 'suffix', suffix: '-soci' });
    assert.equal(options.ztocCache, undefined, 'no zTOC cache unless SOCI_ZTOC_CACHE names one');
    // (The exact deadline and hard stop are asserted with a mocked clock in build-options.test.ts.)
    assert.equal(typeof options.deadline, 'number');
    assert.equal(options.signal?.aborted, false);

    const sent = events.events.slice(before);
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.DetailType, 'SOCI Index Created');
    assert.equal(sent[0]!.EventBusName, 'pipelines');
    assert.equal(sent[0]!.detail.sourceDigest, digest);
    assert.equal(sent[0]!.detail.outputTag, 'v1-soci');

    const metrics = metricValues(run.emf);
    assert.equal(
      run.emf.every((b) => (b._aws as { CloudWatchMetrics: { Namespace: string }[] }).CloudWatchMetrics[0]!.Namespace === 'SociTest'),
      true,
    );
    assert.deepEqual(
      metrics.filter((m) => m.name === 'ImagesIndexed').map((m) => m.value),
      [1],
    );
    assert.deepEqual(
      metrics.filter((m) => m.name === 'LayersIndexed').map((m) => m.value),
      [1],
    );
    assert.deepEqual(
      metrics.filter((m) => m.name === 'LayersSkipped').map((m) => [m.value, m.reason]),
      [[1, 'unsupported-format']],
    );
    assert.deepEqual(
      metrics.filter((m) => m.name === 'BytesRead').map((m) => m.value),
      [4242],
    );
    assert.deepEqual(
      metrics.filter((m) => m.name === 'ZtocBytes').map((m) => m.value),
      [321],
    );
    assert.equal(metrics.filter((m) => m.name === 'DurationMs').length, 1);

    // Every log line carries the image context; no line ever carries the registry password.
    assert.ok(run.logs.length >= 2);
    for (const line of run.logs) {
      assert.equal(line.repository, 'team/app', JSON.stringify(line));
      assert.equal(line.digest, digest);
      assert.equal(line.tag, 'v1');
    }
    assert.equal(run.text.includes(password), false);
    assert.equal(run.text.includes(Buffer.from(`AWS:${password}`).toString('base64')), false);
  });

  for (const status of ['already-indexed', 'no-eligible-layers', 'not-an-image', 'superseded'] as const) {
    test(`${status}: a permanent outcome returns normally with a Skipped event`, async () => {
      const core = fakeCore(async (o) => result(status, o));
      const handler = handlerFromEnvironment(baseEnv, core.build);
      const before = events.events.length;
      const run = await capture(() => handler(pushEvent(), lambdaContext()));
      assert.equal(run.error, undefined);
      assert.equal(run.value?.outcome, 'skipped');
      assert.equal(run.value?.reason, status);
      const sent = events.events.slice(before);
      assert.deepEqual(
        sent.map((e) => [e.DetailType, e.detail.status]),
        [['SOCI Index Skipped', status]],
      );
      assert.deepEqual(
        metricValues(run.emf)
          .filter((m) => m.name === 'ImagesSkipped')
          .map((m) => m.reason),
        [status],
      );
    });
  }

  test('a permanent core failure returns normally with a Failed event (no retry)', async () => {
    const core = fakeCore(async () => {
      throw new SociError('permanent', 'unsupported manifest: schema 1');
    });
    const handler = handlerFromEnvironment(baseEnv, core.build);
    const before = events.events.length;
    const run = await capture(() => handler(pushEvent(), lambdaContext()));
    assert.equal(run.error, undefined);
    assert.deepEqual(run.value, { outcome: 'failed', reason: 'permanent', message: 'unsupported manifest: schema 1' });
    const sent = events.events.slice(before);
    assert.deepEqual(
      sent.map((e) => [e.DetailType, e.detail.reason, e.detail.retryable]),
      [['SOCI Index Failed', 'unsupported manifest: schema 1', false]],
    );
    assert.deepEqual(
      metricValues(run.emf)
        .filter((m) => m.name === 'ImagesFailed')
        .map((m) => m.value),
      [1],
    );
    assert.ok(run.logs.some((l) => l.level === 'ERROR' && /failed permanently/.test(String(l.message))));
  });

  test('transient failures throw so Lambda retries, after a retryable Failed event', async () => {
    for (const error of [
      new SociError('transient', 'registry answered 503'),
      new RegistryError('failed', 'registry h: push failed (503)', 503),
      new RegistryError('network', 'reset'),
    ]) {
      const core = fakeCore(async () => {
        throw error;
      });
      const handler = handlerFromEnvironment(baseEnv, core.build);
      const before = events.events.length;
      const run = await capture(() => handler(pushEvent(), lambdaContext()));
      assert.ok(run.error instanceof SociError && run.error.kind === 'transient', String(run.error));
      assert.equal(run.error.message, error.message);
      assert.deepEqual(
        events.events.slice(before).map((e) => [e.DetailType, e.detail.retryable]),
        [['SOCI Index Failed', true]],
      );
    }
  });

  test('a poison image costs one run: engine and input failures the core did not classify are permanent', async () => {
    const poisons: Error[] = [
      new RangeError('Invalid typed array length: 4294967296'),
      new Error('FlatBuffers: cannot grow buffer beyond 2 gigabytes.'),
      new LayerIndexError('layer worker ran out of memory (ERR_WORKER_OUT_OF_MEMORY)'),
      new LimitExceededError('max-token-body-bytes', 'registry h: token for repository:a:pull: response body exceeds the 1 MiB limit'),
      new RegistryError('invalid-response', 'registry h: referrers of a@sha256:x: not an OCI index'),
      new RegistryError('failed', 'registry h: push blob a@sha256:x failed (no upload Location)'),
    ];
    for (const poison of poisons) {
      let calls = 0;
      const core = fakeCore(async () => {
        calls++;
        throw poison;
      });
      const handler = handlerFromEnvironment(baseEnv, core.build);
      const before = events.events.length;
      const run = await capture(() => handler(pushEvent(), lambdaContext()));
      assert.equal(run.error, undefined, `${poison.name}: returned, so Lambda does not run it again`);
      assert.equal(run.value?.outcome, 'failed');
      assert.equal(run.value?.reason, 'permanent', poison.message);
      assert.equal(calls, 1);
      assert.deepEqual(
        events.events.slice(before).map((e) => [e.DetailType, e.detail.retryable]),
        [['SOCI Index Failed', false]],
      );
    }
  });

  test('an ECR control-plane outage is transient; the core is not called', async () => {
    const core = fakeCore(async (o) => result('created', o));
    const handler = handlerFromEnvironment(baseEnv, core.build);
    ecr.fail('GetAuthorizationToken', { status: 500, type: 'ServerException', message: 'internal' });
    const run = await capture(() => handler(pushEvent(), lambdaContext()));
    assert.ok(run.error instanceof SociError && run.error.kind === 'transient');
    assert.match(run.error.message, /ecr:GetAuthorizationToken failed \(ServerException: internal\)/);
    assert.equal(core.calls.length, 0);
  });

  test('a lost completion event retries the push event; a missing bus does not', async () => {
    const core = fakeCore(async (o) => result('created', o));
    const handler = handlerFromEnvironment(baseEnv, core.build);
    events.rejectEntries(1);
    const rejected = await capture(() => handler(pushEvent(), lambdaContext()));
    assert.ok(rejected.error instanceof SociError && rejected.error.kind === 'transient' && /PutEvents/.test(rejected.error.message));

    events.fail('PutEvents', { status: 400, type: 'ResourceNotFoundException', message: 'Event bus pipelines does not exist.' });
    const missing = await capture(() => handler(pushEvent(), lambdaContext()));
    assert.equal(missing.error, undefined);
    assert.equal(missing.value?.outcome, 'created');
    assert.ok(missing.logs.some((l) => /completion event not sent/.test(String(l.message))));
  });

  test('without SOCI_EVENT_BUS no event is sent', async () => {
    const core = fakeCore(async (o) => result('created', o));
    const handler = handlerFromEnvironment({ SOCI_REPOSITORY_FILTERS: 'team/*' }, core.build);
    const calls = events.calls.length;
    const run = await capture(() => handler(pushEvent(), lambdaContext()));
    assert.equal(run.value?.outcome, 'created');
    assert.equal(events.calls.length, calls);
  });

  test('an event whose tag has moved on is skipped as superseded, before the core', async () => {
    const core = fakeCore(async (o) => result('created', o));
    const handler = handlerFromEnvironment(baseEnv, core.build);
    const before = events.events.length;
    const moved = await capture(() => handler(pushEvent({ 'image-digest': `sha256:${'9'.repeat(64)}` }), lambdaContext()));
    assert.equal(moved.value?.outcome, 'skipped');
    assert.equal(moved.value?.reason, 'superseded');
    assert.equal(moved.value!.message, `tag v1 now points at ${digest}: that push is indexed by its own event`);
    const gone = await capture(() => handler(pushEvent({ 'image-tag': 'v0' }), lambdaContext()));
    assert.equal(gone.value?.reason, 'deleted');
    assert.match(
      gone.value!.message,
      /^tag v0 no longer exists \(deleted, or its repository was\): .*v0.* not found \(404 MANIFEST_UNKNOWN\)/,
    );
    assert.equal(core.calls.length, 0);
    assert.deepEqual(
      events.events.slice(before).map((e) => [e.DetailType, e.detail.status]),
      [
        ['SOCI Index Skipped', 'superseded'],
        ['SOCI Index Skipped', 'deleted'],
      ],
    );
  });

  test('a repository that was deleted is skipped without retry', async () => {
    const core = fakeCore(async (o) => result('created', o));
    const handler = handlerFromEnvironment(baseEnv, core.build);
    const run = await capture(() => handler(pushEvent({ 'repository-name': 'team/deleted' }), lambdaContext()));
    assert.equal(run.error, undefined);
    assert.equal(run.value?.outcome, 'skipped');
    assert.equal(run.value?.reason, 'deleted');
    assert.match(
      run.value!.message,
      /^tag v1 no longer exists \(deleted, or its repository was\): .*team\/deleted:v1 not found \(404 MANIFEST_UNKNOWN\)/,
    );
    assert.equal(core.calls.length, 0);
  });

  test('too little time left fails permanently, naming the fix', async () => {
    const core = fakeCore(async (o) => result('created', o));
    const handler = handlerFromEnvironment(baseEnv, core.build);
    const run = await capture(() => handler(pushEvent(), lambdaContext(16_000)));
    assert.equal(run.value?.outcome, 'failed');
    assert.match(run.value!.message, /^only \d+ ms left after the 15000 ms safety margin: raise the function timeout$/);
    assert.equal(core.calls.length, 0);
  });

  test('malformed and foreign events are logged and dropped; nothing throws, nothing is called', async () => {
    const core = fakeCore(async (o) => result('created', o));
    const handler = handlerFromEnvironment(baseEnv, core.build);
    const ecrCalls = ecr.calls.length;
    const eventCalls = events.calls.length;
    const bad: unknown[] = [
      undefined,
      'text',
      { ...fixture('ecr-push-image'), detail: undefined },
      fixture('ecr-push-image', { 'image-digest': undefined }),
      fixture('ecr-push-image', { 'repository-name': 12 }),
      fixture('ecr-push-image', { 'image-tag': { v: 1 } }),
    ];
    for (const event of bad) {
      const run = await capture(() => handler(event, lambdaContext()));
      assert.equal(run.error, undefined);
      assert.equal(run.value?.outcome, 'ignored');
      assert.equal(run.value?.reason, 'invalid-event');
      const warning = run.logs.find((l) => l.message === 'dropped malformed ECR push event');
      assert.ok(Array.isArray(warning?.problems), JSON.stringify(run.logs));
      assert.equal(warning?.level, 'WARN');
    }
    for (const name of ['ecr-image-scan', 'ecr-delete-image', 'ecr-push-failed'] as const) {
      const run = await capture(() => handler(fixture(name), lambdaContext()));
      assert.equal(run.value?.outcome, 'ignored');
      assert.equal(run.value?.reason, 'foreign-event');
    }
    assert.equal(core.calls.length, 0);
    assert.equal(ecr.calls.length, ecrCalls);
    assert.equal(events.calls.length, eventCalls);
  });

  test('guarded pushes are skipped from the event alone: no registry, no core, no completion event', async () => {
    const core = fakeCore(async (o) => result('created', o));
    const handler = handlerFromEnvironment(baseEnv, core.build);
    const ecrCalls = ecr.calls.length;
    const eventCalls = events.calls.length;
    const cases = [
      [fixture('ecr-push-soci-output'), 'own-output'],
      [fixture('ecr-push-soci-index-artifact'), 'own-output'],
      [fixture('ecr-push-untagged-child'), 'untagged'],
      [fixture('ecr-push-signature'), 'not-an-image'],
      [fixture('ecr-push-sbom'), 'not-an-image'],
      [fixture('ecr-push-docker-image'), 'filtered-out'],
      // The context's function ARN names account 123456789012.
      [{ ...pushEvent(), account: '210987654321' }, 'cross-account'],
    ] as const;
    for (const [event, reason] of cases) {
      const run = await capture(() => handler(event, lambdaContext()));
      assert.equal(run.value?.outcome, 'skipped');
      assert.equal(run.value?.reason, reason);
      assert.deepEqual(
        metricValues(run.emf)
          .filter((m) => m.name === 'ImagesSkipped')
          .map((m) => m.reason),
        [reason],
      );
      assert.ok(run.logs.some((l) => String(l.message).startsWith('skipped: ') && l.reason === reason));
    }
    assert.equal(core.calls.length, 0);
    assert.equal(ecr.calls.length, ecrCalls);
    assert.equal(events.calls.length, eventCalls);
  });
});
