// RegistryTarget through a fault-injecting proxy in front of a real docker-registry (basic auth): dropped
// downloads resume, throttling and 5xx are retried, redirects to another origin never carry credentials.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { sha256Digest } from '../../lambda/oci/digest.ts';
import type { Descriptor } from '../../lambda/oci/target.ts';
import { RegistryTarget, type RegistryTargetOptions } from '../../lambda/registry/client.ts';
import { RegistryError } from '../../lambda/registry/errors.ts';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { type BuiltLayout, buildLayout, deterministicBytes, pushLayout } from '../support/images.ts';
import { type RunningRegistry, startRegistry } from '../support/registry.ts';
import { collect } from '../support/run.ts';
import { assertWaitedAtLeast } from '../support/waits.ts';

const creds = { username: 'AWS', password: 'fault-pw' };

describe('RegistryTarget through a fault proxy', () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let layout: BuiltLayout;
  let layer: Descriptor;
  let layerBytes: Uint8Array;
  const targetFor = (options: Partial<RegistryTargetOptions> = {}) =>
    new RegistryTarget({
      registry: proxy.host,
      repository: 'test/app',
      credentials: async () => creds,
      retry: { baseDelayMs: 5 },
      ...options,
    });
  /** The layer GETs the registry side answered (after any 401 challenge round). */
  const layerGets = () =>
    proxy.requests.filter(
      (r) => r.server === 'proxy' && r.method === 'GET' && r.path.endsWith(`/blobs/${layer.digest}`) && r.status !== 401,
    );

  before(async () => {
    registry = await startRegistry({ auth: creds });
    layout = await buildLayout({ layers: [{ compression: 'gzip', files: [{ name: 'big.bin', size: 400_000 }] }], tag: 'v1' });
    await pushLayout(layout, `${registry.host}/test/app:v1`, { creds });
    layer = layout.images[0]!.layers[0]!;
    layerBytes = layout.blobs.get(layer.digest)!;
    proxy = await startFaultProxy({ upstream: registry.host });
  });
  after(async () => {
    await proxy.stop();
    await registry.stop();
  });
  beforeEach(() => proxy.reset());

  test('a download dropped mid-blob resumes with a Range request and yields identical bytes', async () => {
    proxy.dropBlobAfter(100_000);
    proxy.dropBlobAfter(70_000);
    let counted = 0;
    const bytes = await collect(await targetFor().fetch(layer, { onBytes: (n) => (counted += n) }));
    assert.ok(bytes.equals(layerBytes));
    assert.equal(counted, layer.size);
    assert.deepEqual(
      layerGets().map((r) => r.range),
      [undefined, 'bytes=100000-', 'bytes=170000-'],
    );
  });

  test('a ranged read that drops resumes from where it broke', async () => {
    proxy.dropBlobAfter(50_000);
    const bytes = await collect(await targetFor().fetch(layer, { offset: 200_000 }));
    assert.ok(bytes.equals(layerBytes.subarray(200_000)));
    assert.deepEqual(
      layerGets().map((r) => r.range),
      ['bytes=200000-', 'bytes=250000-'],
    );
  });

  test('a resume answered 200 (Range ignored) skips the bytes already delivered', async () => {
    proxy.dropBlobAfter(90_000);
    proxy.ignoreRangeNext(1);
    let counted = 0;
    const bytes = await collect(await targetFor().fetch(layer, { onBytes: (n) => (counted += n) }));
    assert.ok(bytes.equals(layerBytes));
    assert.equal(counted, layer.size);
    assert.deepEqual(
      layerGets().map((r) => [r.range, r.status]),
      [
        [undefined, 200],
        ['bytes=90000-', 200],
      ],
    );
  });

  test('drops beyond the retry budget fail with a network error naming the blob', async () => {
    proxy.dropBlobAfter(10_000, 3);
    const stream = await targetFor({ retry: { attempts: 3, baseDelayMs: 1 } }).fetch(layer);
    await assert.rejects(collect(stream), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.equal(err.kind, 'network');
      assert.match(err.message, new RegExp(`^registry ${proxy.host}: blob test/app@${layer.digest} failed \\(`));
      return true;
    });
    assert.equal(layerGets().length, 3, 'one read and two resumes: three attempts, not one more or fewer');
  });

  test('a read that keeps dropping backs off before each resume (exponentially, as the other retries)', async (t) => {
    t.mock.method(Math, 'random', () => 1); // full jitter at its top: waits of 100 then 200 ms
    proxy.dropBlobAfter(10_000, 2);
    const bytes = await collect(await targetFor({ retry: { baseDelayMs: 100 } }).fetch(layer));
    assert.ok(bytes.equals(layerBytes));
    const at = layerGets().map((r) => r.at);
    assert.equal(at.length, 3);
    const gaps = at.slice(1).map((time, i) => time - at[i]!);
    for (const [i, gap] of gaps.entries()) {
      assertWaitedAtLeast(gap, 100 * 2 ** i, `resume ${i + 1}`);
    }
  });

  test('content that does not match its digest is refused, not retried', async () => {
    proxy.corruptBlobs(1);
    await assert.rejects(collect(await targetFor().fetch(layer)), { name: 'DigestMismatchError', errorKind: 'corrupt' });
    assert.equal(layerGets().length, 1);
  });

  test('429 with Retry-After and 503s are retried until the registry answers', async () => {
    proxy.failNext(429, 1, { retryAfter: '1', path: /\/manifests\// });
    proxy.failNext(503, 2, { path: /\/manifests\// });
    // A 50 ms cap instead of a real 1 s sleep: the waits themselves are asserted by the tests below.
    assert.equal((await targetFor({ retry: { baseDelayMs: 5, maxDelayMs: 50 } }).resolve('v1')).digest, layout.root.digest);
    const statuses = proxy.requests.filter((r) => r.path.includes('/manifests/')).map((r) => r.status);
    assert.deepEqual(
      statuses.filter((s) => s !== 401),
      [429, 503, 503, 200],
    );
  });

  /** Milliseconds between the throttled manifest request and the next one (timestamps at the proxy). */
  const waitAfter429 = () => {
    const manifests = proxy.requests.filter((r) => r.path.includes('/manifests/') && r.status !== 401);
    const throttled = manifests.findIndex((r) => r.status === 429);
    assert.ok(throttled >= 0 && manifests[throttled + 1], 'a 429 and a retry');
    return manifests[throttled + 1]!.at - manifests[throttled]!.at;
  };

  test('the wait after a 429 is at least what Retry-After asked (seconds), not the short backoff', async () => {
    proxy.failNext(429, 1, { retryAfter: '1', path: /\/manifests\// });
    assert.equal((await targetFor().resolve('v1')).digest, layout.root.digest);
    assertWaitedAtLeast(waitAfter429(), 1000, 'after the 429');
  });

  test('a Retry-After HTTP date is honoured too', async () => {
    // HTTP dates have whole seconds. A date on a second boundary 2-3 s ahead: the client still has more than
    // 1 s to wait even when its request takes up to a second to be answered 429 (a loaded CI machine; at
    // `now + 2 s`, truncated, as little as 1 s was left and any delay made the wait fall short of 1 s).
    const retryAt = new Date(Math.ceil((Date.now() + 2000) / 1000) * 1000);
    proxy.failNext(429, 1, { retryAfter: retryAt.toUTCString(), path: /\/manifests\// });
    assert.equal((await targetFor().resolve('v1')).digest, layout.root.digest);
    assertWaitedAtLeast(waitAfter429(), 1000, 'after the 429');
  });

  test('a Retry-After beyond the cap waits the cap, not what the server asked', async () => {
    proxy.failNext(429, 1, { retryAfter: '30', path: /\/manifests\// });
    assert.equal((await targetFor({ retry: { baseDelayMs: 5, maxDelayMs: 400 } }).resolve('v1')).digest, layout.root.digest);
    const waited = waitAfter429();
    assertWaitedAtLeast(waited, 400, 'after the 429');
    assert.ok(waited < 30_000, `waited ${waited} ms`);
  });

  test('5xx beyond the retry budget fails with the operation and status', async () => {
    proxy.failNext(503, 3, { path: /\/manifests\// });
    await assert.rejects(targetFor({ retry: { attempts: 3, baseDelayMs: 1 } }).resolve('v1'), {
      message: `registry ${proxy.host}: manifest test/app:v1 failed (503 UNAVAILABLE)`,
    });
    const tries = proxy.requests.filter((r) => r.path.includes('/manifests/') && r.status !== 401).map((r) => r.status);
    assert.deepEqual(tries, [503, 503, 503], 'exactly `attempts` tries');
  });

  test('the last allowed attempt is made: 503 twice with 3 attempts succeeds', async () => {
    proxy.failNext(503, 2, { path: /\/manifests\// });
    assert.equal((await targetFor({ retry: { attempts: 3, baseDelayMs: 1 } }).resolve('v1')).digest, layout.root.digest);
  });

  test('retries back off exponentially: with the jitter at its top the waits are base, 2·base, 4·base', async (t) => {
    // Full jitter draws each wait from [0, base·2^n]; with Math.random at 1 the waits are 100, 200, 400 ms.
    t.mock.method(Math, 'random', () => 1);
    proxy.failNext(503, 3, { path: /\/manifests\// });
    assert.equal((await targetFor({ retry: { baseDelayMs: 100 } }).resolve('v1')).digest, layout.root.digest);
    const at = proxy.requests.filter((r) => r.path.includes('/manifests/') && r.status !== 401).map((r) => r.at);
    assert.equal(at.length, 4);
    const gaps = at.slice(1).map((time, i) => time - at[i]!);
    for (const [i, gap] of gaps.entries()) {
      assertWaitedAtLeast(gap, 100 * 2 ** i, `wait ${i + 1}`);
    }
  });

  test('a non-retryable 4xx fails at once', async () => {
    proxy.failNext(400, 1, { path: /\/manifests\// });
    await assert.rejects(targetFor().resolve('v1'), { kind: 'failed', status: 400 });
    assert.equal(proxy.requests.filter((r) => r.path.includes('/manifests/')).length, 1);
  });

  test('an upload interrupted by 503 starts a new session and completes', async () => {
    const content = deterministicBytes('retry-upload', 100_000);
    const desc = { mediaType: 'application/octet-stream', digest: sha256Digest(content), size: content.length };
    proxy.failNext(503, 1, { method: 'PATCH' });
    await targetFor({ monolithicLimit: 40_000 }).push(desc, content);
    assert.equal(proxy.requests.filter((r) => r.method === 'POST' && r.status === 202).length, 2);
    assert.ok((await collect(await targetFor().fetch(desc))).equals(content));
  });

  test('blob reads redirected to another origin succeed without sending Authorization there', async () => {
    proxy.redirectBlobs(true);
    const bytes = await collect(await targetFor().fetch(layer));
    assert.ok(bytes.equals(layerBytes));
    const redirected = proxy.requests.filter((r) => r.server === 'redirect');
    assert.equal(redirected.length, 1);
    assert.deepEqual([redirected[0]!.authorization, redirected[0]!.status], [false, 200]);
    // The registry side did get credentials (it requires them).
    assert.ok(proxy.requests.some((r) => r.server === 'proxy' && r.status === 307 && r.authorization));
  });

  test('a redirected read that drops resumes through a fresh redirect, keeping the Range', async () => {
    proxy.redirectBlobs(true);
    proxy.dropBlobAfter(120_000);
    const bytes = await collect(await targetFor().fetch(layer));
    assert.ok(bytes.equals(layerBytes));
    const redirected = proxy.requests.filter((r) => r.server === 'redirect');
    assert.deepEqual(
      redirected.map((r) => [r.authorization, r.range]),
      [
        [false, undefined],
        [false, 'bytes=120000-'],
      ],
    );
    assert.equal(proxy.bytesServed(`/v2/test/app/blobs/${layer.digest}`) >= layer.size, true);
  });
});
