// The core through an Amazon ECR-like front (test/support/ecr-front.ts) over docker-registry with basic
// auth: a zTOC above 16 MiB uploaded as ECR takes it (one streaming PATCH answered 201, or the 5 MiB parts
// the registry asks for), a tag-immutable repository (a rerun is "already indexed" without a write,
// in-place is refused in one line), fronts that convert or hide a manifest on a narrow Accept, and
// throttled manifest PUTs.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RegistryTarget, type RegistryTargetOptions } from '../../lambda/registry/client.ts';
import { buildSociIndex, DEFAULT_BUILD_OPTIONS } from '../../lambda/soci/build.ts';
import { type BuildOptions, SociError } from '../../lambda/soci/types.ts';
import { type EcrFront, type EcrFrontOptions, startEcrFront } from '../support/ecr-front.ts';
import { type BuiltLayout, buildLayout, pushLayout } from '../support/images.ts';
import { type RunningRegistry, startRegistry } from '../support/registry.ts';
import { writesSince } from '../support/writes.ts';
import { assertComplete } from './helpers.ts';

const creds = { username: 'AWS', password: 'soci-ecr-pw' };
const MiB = 1024 * 1024;
const options: BuildOptions = { ...DEFAULT_BUILD_OPTIONS, spanSize: 65536, minLayerSize: 100_000, concurrency: 2 };

describe('soci core through an ECR-like front', () => {
  let registry: RunningRegistry;
  let small: BuiltLayout;
  let large: BuiltLayout;
  const fronts: EcrFront[] = [];
  const front = async (extra: Omit<EcrFrontOptions, 'upstream'> = {}) => {
    const started = await startEcrFront({ upstream: registry.host, ...extra });
    fronts.push(started);
    return started;
  };
  const target = (f: EcrFront, repository: string, extra: Partial<RegistryTargetOptions> = {}) =>
    new RegistryTarget({ registry: f.host, repository, credentials: async () => creds, retry: { baseDelayMs: 5 }, ...extra });

  before(async () => {
    registry = await startRegistry({ auth: creds });
    small = await buildLayout({ layers: [{ compression: 'gzip', files: [{ name: 'app/big.bin', size: 300_000 }] }], tag: 'v1' });
    // At a 4 KiB span a 9 MB incompressible layer gets a zTOC of about 18 MiB.
    large = await buildLayout({ layers: [{ compression: 'gzip', files: [{ name: 'data/large.bin', size: 9_000_000 }] }], tag: 'v1' });
    for (const repository of ['ecr/large', 'ecr/large-chunked']) await pushLayout(large, `${registry.host}/${repository}:v1`, { creds });
    for (const repository of ['ecr/locked', 'ecr/locked-in-place', 'ecr/throttled', 'ecr/oci'])
      await pushLayout(small, `${registry.host}/${repository}:v1`, { creds });
    await pushLayout(small, `${registry.host}/ecr/docker:v1`, { creds, format: 'v2s2' });
  });
  after(async () => {
    for (const f of fronts) await f.stop();
    await registry?.stop();
  });

  for (const chunkMinLength of [undefined, 1]) {
    test(`a zTOC above 16 MiB is uploaded ${chunkMinLength ? 'in the parts the registry asks for, each but the last ≥ 5 MiB' : 'in one streaming PATCH answered 201'}`, async () => {
      const f = await front(chunkMinLength ? { chunkMinLength } : {});
      const repository = chunkMinLength ? 'ecr/large-chunked' : 'ecr/large';
      const start = f.requests.length;
      const result = await buildSociIndex(target(f, repository), 'v1', { ...options, spanSize: 4096 });
      assert.equal(result.status, 'created', result.message);
      assert.ok(result.ztocBytes > 16 * MiB, `zTOC of ${result.ztocBytes} bytes`);
      const patches = f.requests.slice(start).filter((r) => r.method === 'PATCH');
      assert.ok(
        patches.every((p) => p.status === 201),
        JSON.stringify(patches.map((p) => p.status)),
      );
      if (chunkMinLength) {
        assert.ok(patches.length >= 4);
        assert.ok(patches.slice(0, -1).every((p) => p.bodyBytes === 5 * MiB));
      } else {
        assert.deepEqual(
          patches.map((p) => p.bodyBytes),
          [result.ztocBytes],
        );
      }
      await assertComplete(target(f, repository), await target(f, repository).resolve('v1-soci'));
    });
  }

  test('tag-immutable repository: a rerun is already indexed without a write; in-place is refused in one line', async () => {
    const f = await front({ immutable: { 'ecr/locked': [], 'ecr/locked-in-place': [] } });
    const first = await buildSociIndex(target(f, 'ecr/locked'), 'v1', options);
    assert.equal(first.status, 'created', first.message);
    const start = f.requests.length;
    const rerun = await buildSociIndex(target(f, 'ecr/locked'), 'v1', options);
    assert.equal(rerun.status, 'already-indexed', rerun.message);
    assert.deepEqual(
      writesSince(f.requests, start, (r) => r.status !== 401),
      [],
    );

    await assert.rejects(
      buildSociIndex(target(f, 'ecr/locked-in-place'), 'v1', { ...options, tagPolicy: { mode: 'in-place' } }),
      (err: unknown) => {
        assert.ok(err instanceof SociError);
        assert.equal(err.kind, 'permanent');
        assert.equal(err.message.split('\n').length, 1);
        assert.match(
          err.message,
          /tag ecr\/locked-in-place:v1 is immutable \(400 TAG_INVALID\).*suffix mode.*IMMUTABLE_WITH_EXCLUSION.*\*-soci/,
        );
        return true;
      },
    );
    assert.equal((await target(f, 'ecr/locked-in-place').resolve('v1')).digest, small.root.digest, 'the source tag is untouched');
  });

  for (const narrowAccept of ['convert', 'not-found'] as const) {
    test(`a front that ${narrowAccept === 'convert' ? 'converts' : 'hides'} manifests on a narrow Accept: OCI and Docker images are indexed as stored`, async () => {
      const f = await front({ narrowAccept });
      for (const repository of ['ecr/docker', 'ecr/oci']) {
        const stored = await new RegistryTarget({ registry: registry.host, repository, credentials: async () => creds }).resolve('v1');
        const result = await buildSociIndex(target(f, repository), 'v1', { ...options, dryRun: true });
        assert.equal(result.status, 'created', result.message);
        assert.equal(result.source.digest, stored.digest);
        assert.equal(result.source.mediaType, stored.mediaType);
      }
      assert.deepEqual(
        f.requests.filter((r) => r.quirk === 'converted' || r.quirk === 'not-accepted'),
        [],
      );
    });
  }

  test('throttled manifest PUTs are retried and the output is complete', async () => {
    const f = await front();
    f.proxy.failNext(429, 3, { method: 'PUT', path: /\/manifests\// });
    const notices: boolean[] = [];
    const result = await buildSociIndex(
      target(f, 'ecr/throttled', { retry: { baseDelayMs: 5, onRetry: (n) => notices.push(n.throttled) } }),
      'v1',
      options,
    );
    assert.equal(result.status, 'created', result.message);
    assert.deepEqual(notices, [true, true, true]);
    await assertComplete(target(f, 'ecr/throttled'), await target(f, 'ecr/throttled').resolve('v1-soci'));
  });
});
