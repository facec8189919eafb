// The registry client's small pure pieces: challenge and Retry-After parsing, backoff bounds, host rules.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseChallenges } from '../../lambda/registry/auth.ts';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { parseEcrHost } from '../../lambda/registry/ecr-credentials.ts';
import { isLoopbackHost } from '../../lambda/registry/http.ts';
import { referrersTag } from '../../lambda/registry/referrers.ts';
import { backoffDelay, isRetryableStatus, parseRetryAfter, retryPolicy } from '../../lambda/registry/retry.ts';

describe('WWW-Authenticate parsing', () => {
  test('a Bearer challenge with quoted parameters', () => {
    assert.deepEqual(
      parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"'),
      [
        {
          scheme: 'bearer',
          params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' },
        },
      ],
    );
  });

  test('several challenges, token params, escapes and commas inside quotes', () => {
    assert.deepEqual(parseChallenges('Basic realm="a, \\"b\\"", Bearer realm="https://x/t",scope="repository:r:pull,push" , Negotiate'), [
      { scheme: 'basic', params: { realm: 'a, "b"' } },
      { scheme: 'bearer', params: { realm: 'https://x/t', scope: 'repository:r:pull,push' } },
      { scheme: 'negotiate', params: {} },
    ]);
    assert.deepEqual(parseChallenges('BASIC Realm=test'), [{ scheme: 'basic', params: { realm: 'test' } }]);
    assert.deepEqual(parseChallenges(''), []);
  });
});

describe('retry policy', () => {
  test('Retry-After as seconds or HTTP date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('3', now), 3000);
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now), 5000);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), undefined);
    assert.equal(parseRetryAfter(null, now), undefined);
  });

  test('full-jitter backoff stays within base·2^n and the maximum; Retry-After is capped by the maximum', () => {
    const policy = retryPolicy({ baseDelayMs: 100, maxDelayMs: 1000 });
    for (let n = 0; n < 8; n++) {
      for (let i = 0; i < 50; i++) {
        const delay = backoffDelay(policy, n);
        assert.ok(delay >= 0 && delay <= Math.min(1000, 100 * 2 ** n), `retry ${n}: ${delay}`);
      }
    }
    assert.equal(backoffDelay(policy, 0, 400), 400);
    assert.equal(backoffDelay(policy, 0, 60_000), 1000);
    assert.equal(retryPolicy().attempts, 5);
  });

  test('which statuses are retried', () => {
    assert.deepEqual([429, 500, 502, 503, 504, 408].map(isRetryableStatus), [true, true, true, true, true, true]);
    assert.deepEqual([400, 401, 403, 404, 405, 416, 501].map(isRetryableStatus), [false, false, false, false, false, false, false]);
  });
});

describe('hosts', () => {
  test('loopback hosts', () => {
    for (const host of ['localhost', 'localhost:5000', '127.0.0.1', '127.1.2.3:443', '[::1]', '[::1]:5000'])
      assert.ok(isLoopbackHost(host), host);
    for (const host of ['registry.example.com', '10.0.0.1:5000', '127.0.0.1.example.com', 'localhost.example.com', '[::2]:5000'])
      assert.ok(!isLoopbackHost(host), host);
  });

  test('ECR hosts give account and region', () => {
    assert.deepEqual(parseEcrHost('123456789012.dkr.ecr.eu-west-1.amazonaws.com'), { accountId: '123456789012', region: 'eu-west-1' });
    assert.deepEqual(parseEcrHost('123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn'), { accountId: '123456789012', region: 'cn-north-1' });
    assert.deepEqual(parseEcrHost('123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com'), {
      accountId: '123456789012',
      region: 'us-gov-west-1',
    });
    assert.deepEqual(parseEcrHost('123456789012.dkr-ecr.us-east-1.on.aws'), { accountId: '123456789012', region: 'us-east-1' });
    assert.equal(parseEcrHost('public.ecr.aws'), undefined);
    assert.equal(parseEcrHost('123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example'), undefined);
  });

  test('https unless the host is loopback or plainHttp is set', async () => {
    const seen: string[] = [];
    const fetchImpl: typeof fetch = async (input) => {
      seen.push(String(input));
      return new Response(null, { status: 404 });
    };
    const digest = `sha256:${'a'.repeat(64)}`;
    const desc = { mediaType: 'application/octet-stream', digest, size: 1 };
    await new RegistryTarget({ registry: 'registry.example.com', repository: 'r', fetchImpl, credentials: async () => undefined }).exists(
      desc,
    );
    await new RegistryTarget({ registry: 'registry.example.com:5000', repository: 'r', fetchImpl, plainHttp: true }).exists(desc);
    await new RegistryTarget({ registry: 'localhost:5000', repository: 'r', fetchImpl }).exists(desc);
    assert.deepEqual(seen, [
      `https://registry.example.com/v2/r/blobs/${digest}`,
      `http://registry.example.com:5000/v2/r/blobs/${digest}`,
      `http://localhost:5000/v2/r/blobs/${digest}`,
    ]);
  });

  test('a tag outside the grammar is refused before any request, for reading and for tagging', async () => {
    const seen: string[] = [];
    const fetchImpl: typeof fetch = async (input) => {
      seen.push(String(input));
      return new Response(null, { status: 500 });
    };
    const target = new RegistryTarget({ registry: 'localhost:5000', repository: 'r', fetchImpl, retry: { attempts: 1 } });
    const desc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 1 };
    for (const tag of ['-dash', 't'.repeat(129), 'a b', '']) {
      await assert.rejects(target.tag(desc, tag), { name: 'InvalidReferenceError', errorKind: 'permanent' }, JSON.stringify(tag));
      await assert.rejects(target.resolve(tag), { name: 'InvalidReferenceError' }, JSON.stringify(tag));
    }
    assert.deepEqual(seen, []);
  });

  test('referrers fallback tag', () => {
    assert.equal(referrersTag(`sha256:${'ab'.repeat(32)}`), `sha256-${'ab'.repeat(32)}`);
  });
});
