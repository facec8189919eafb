import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { completionFromResult, completionWithoutBuild, publishCompletion } from '../../lambda/handler/completion.ts';
import { type BuildResult, SociError } from '../../lambda/soci/types.ts';
import { type FakeEventBridge, startFakeEventBridge } from '../support/fake-aws.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' };
const source = { repository: 'team/app', digest: `sha256:${'1'.repeat(64)}`, tag: 'v1' };

const created: BuildResult = {
  status: 'created',
  message: 'indexed 1 of 2 layers',
  source: { reference: 'v1', digest: source.digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', tag: 'v1' },
  indexVersion: 'v2',
  output: { digest: `sha256:${'2'.repeat(64)}`, mediaType: 'application/vnd.oci.image.index.v1+json', tags: ['v1-soci'] },
  platforms: [
    {
      platform: 'linux/amd64',
      manifestDigest: source.digest,
      indexDigest: `sha256:${'3'.repeat(64)}`,
      layers: [
        {
          digest: `sha256:${'4'.repeat(64)}`,
          mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
          size: 20_000_000,
          status: 'indexed',
          ztocDigest: `sha256:${'5'.repeat(64)}`,
          ztoc: 'reused',
        },
        {
          digest: `sha256:${'6'.repeat(64)}`,
          mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
          size: 1000,
          status: 'skipped',
          reason: 'below minimum layer size',
          skipCode: 'below-minimum-size',
        },
      ],
    },
  ],
  bytesRead: 20_000_000,
  ztocBytes: 12_345,
  durationMs: 800,
  dryRun: false,
};

describe('completion events', () => {
  test('Created carries the output to deploy and per-layer results', () => {
    const { detailType, detail } = completionFromResult(source, created, 1234.4);
    assert.equal(detailType, 'SOCI Index Created');
    assert.deepEqual(detail, {
      status: 'created',
      repository: 'team/app',
      sourceDigest: source.digest,
      sourceTag: 'v1',
      outputTag: 'v1-soci',
      outputDigest: `sha256:${'2'.repeat(64)}`,
      indexVersion: 'v2',
      platforms: ['linux/amd64'],
      layers: [
        {
          platform: 'linux/amd64',
          digest: `sha256:${'4'.repeat(64)}`,
          size: 20_000_000,
          ztocDigest: `sha256:${'5'.repeat(64)}`,
          ztoc: 'reused',
          skipReason: null,
          skipCode: null,
        },
        {
          platform: 'linux/amd64',
          digest: `sha256:${'6'.repeat(64)}`,
          size: 1000,
          ztocDigest: null,
          ztoc: null,
          skipReason: 'below minimum layer size',
          skipCode: 'below-minimum-size',
        },
      ],
      durationMs: 1234,
      reason: null,
    });
  });

  test('core skips become Skipped with the reason', () => {
    const { detailType, detail } = completionFromResult(
      source,
      { ...created, status: 'no-eligible-layers', message: 'no layer at or above the minimum size', output: undefined },
      5,
    );
    assert.equal(detailType, 'SOCI Index Skipped');
    assert.equal(detail.reason, 'no layer at or above the minimum size');
    assert.equal(detail.outputDigest, null);
    assert.equal(detail.outputTag, null);
  });

  test('failures say whether Lambda will retry', () => {
    const transient = completionWithoutBuild(source, 'v1', { status: 'failed', error: new SociError('transient', 'registry x: 503') }, 10);
    assert.equal(transient.detailType, 'SOCI Index Failed');
    assert.equal(transient.detail.retryable, true);
    assert.equal(transient.detail.reason, 'registry x: 503');
    assert.equal(transient.detail.indexVersion, 'v1');
    const permanent = completionWithoutBuild(
      { ...source, tag: undefined },
      'v2',
      { status: 'failed', error: new SociError('permanent', 'manifest unknown') },
      10,
    );
    assert.equal(permanent.detail.retryable, false);
    assert.equal(permanent.detail.sourceTag, null);
    const superseded = completionWithoutBuild(source, 'v2', { status: 'superseded', reason: 'tag v1 now points at …' }, 10);
    assert.equal(superseded.detailType, 'SOCI Index Skipped');
    assert.equal('retryable' in superseded.detail, false);
  });
});

describe('publishCompletion through the real SDK', () => {
  let events: FakeEventBridge;
  before(async () => {
    events = await startFakeEventBridge();
  });
  after(() => events.close());

  test('AWS_ENDPOINT_URL_EVENTBRIDGE routes PutEvents to the fake, which records the entry', async () => {
    process.env.AWS_ENDPOINT_URL_EVENTBRIDGE = events.url;
    try {
      const client = new EventBridgeClient({ region: 'eu-west-1', credentials });
      const id = await publishCompletion(client, 'pipelines', completionFromResult(source, created, 1));
      assert.match(id ?? '', /^[0-9a-f-]{36}$/);
      const last = events.events.at(-1)!;
      assert.equal(last.EventBusName, 'pipelines');
      assert.equal(last.Source, 'soci-indexer');
      assert.equal(last.DetailType, 'SOCI Index Created');
      assert.equal(last.detail.outputDigest, `sha256:${'2'.repeat(64)}`);
      assert.match(String(events.calls.at(-1)!.headers.authorization), /\/eu-west-1\/events\/aws4_request/);
    } finally {
      delete process.env.AWS_ENDPOINT_URL_EVENTBRIDGE;
    }
  });

  test('a rejected entry and a service error are classified', async () => {
    const client = new EventBridgeClient({ region: 'eu-west-1', credentials, endpoint: events.url, maxAttempts: 1 });
    const completion = completionFromResult(source, created, 1);
    events.rejectEntries(1);
    await assert.rejects(
      publishCompletion(client, 'default', completion),
      (err: unknown) => err instanceof SociError && err.kind === 'transient' && /InternalFailure/.test(err.message),
    );
    events.fail('PutEvents', { status: 400, type: 'ResourceNotFoundException', message: 'Event bus nope does not exist.' });
    await assert.rejects(
      publishCompletion(client, 'nope', completion),
      (err: unknown) => err instanceof SociError && err.kind === 'permanent' && /does not exist/.test(err.message),
    );
    const count = events.events.length;
    await publishCompletion(client, 'default', completion);
    assert.equal(events.events.length, count + 1);
  });
});
