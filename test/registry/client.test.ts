// RegistryTarget against a real docker-registry 2.8, anonymous and behind htpasswd basic auth.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sha256Digest as sha256 } from '../../lambda/oci/digest.ts';
import {
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
} from '../../lambda/oci/media-types.ts';
import type { Descriptor } from '../../lambda/oci/target.ts';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { RegistryError } from '../../lambda/registry/errors.ts';
import { descriptorOf } from '../support/bytes.ts';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { type BuiltLayout, buildLayout, deterministicBytes, pushLayout } from '../support/images.ts';
import { type RunningRegistry, startRegistry } from '../support/registry.ts';
import { collect } from '../support/run.ts';

const decode = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes));

const layers = [
  {
    compression: 'gzip' as const,
    files: [
      { name: 'data/a.bin', size: 150_000 },
      { name: 'data/hello.txt', size: 12 },
    ],
  },
  { compression: 'uncompressed' as const, files: [{ name: 'b.bin', size: 20_000 }] },
];

for (const auth of [undefined, { username: 'AWS', password: 's3cret-pw' }]) {
  describe(`RegistryTarget on docker-registry (${auth ? 'basic auth' : 'anonymous'})`, () => {
    let registry: RunningRegistry;
    let oci: BuiltLayout;
    let docker: BuiltLayout;
    let multi: BuiltLayout;
    let target: RegistryTarget;
    const targetFor = (repository: string, options: Partial<ConstructorParameters<typeof RegistryTarget>[0]> = {}) =>
      new RegistryTarget({ registry: registry.host, repository, credentials: async () => auth, retry: { baseDelayMs: 5 }, ...options });

    before(async () => {
      registry = await startRegistry({ auth });
      oci = await buildLayout({ layers: [...layers, { compression: 'zstd', files: [{ name: 'z.bin', size: 30_000 }] }], tag: 'v1' });
      docker = await buildLayout({ layers, tag: 'v1' });
      multi = await buildLayout({
        layers,
        tag: 'multi',
        platforms: [
          { architecture: 'amd64', os: 'linux' },
          { architecture: 'arm64', os: 'linux', variant: 'v8' },
        ],
      });
      await pushLayout(oci, `${registry.host}/test/oci:v1`, { creds: auth });
      await pushLayout(docker, `${registry.host}/test/docker:v1`, { creds: auth, format: 'v2s2' });
      await pushLayout(multi, `${registry.host}/test/multi:v1`, { creds: auth });
      target = targetFor('test/oci');
    });
    after(() => registry.stop());

    test('resolves an OCI manifest by tag to the bytes skopeo pushed', async () => {
      const desc = await target.resolve('v1');
      assert.deepEqual(desc, { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: oci.root.digest, size: oci.root.size });
      assert.deepEqual(await target.fetchBytes(desc), oci.blobs.get(oci.root.digest));
      assert.deepEqual(await target.resolve(oci.root.digest), desc);
    });

    test('resolves a Docker schema 2 manifest and reads its layers', async () => {
      const dockerTarget = targetFor('test/docker');
      const desc = await dockerTarget.resolve('v1');
      assert.equal(desc.mediaType, MEDIA_TYPE_DOCKER_MANIFEST);
      const manifest = decode(await dockerTarget.fetchBytes(desc));
      assert.equal(manifest.layers[0].mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
      const layer = await dockerTarget.fetchBytes(manifest.layers[0]);
      assert.equal(sha256(layer), manifest.layers[0].digest);
    });

    test('resolves a two-platform index and its per-platform manifests', async () => {
      const multiTarget = targetFor('test/multi');
      const desc = await multiTarget.resolve('v1');
      assert.deepEqual(desc, { mediaType: MEDIA_TYPE_OCI_INDEX, digest: multi.root.digest, size: multi.root.size });
      const index = decode(await multiTarget.fetchBytes(desc));
      assert.deepEqual(
        index.manifests.map((m: Descriptor) => m.platform),
        [
          { architecture: 'amd64', os: 'linux' },
          { architecture: 'arm64', os: 'linux', variant: 'v8' },
        ],
      );
      const arm = await multiTarget.resolve(index.manifests[1].digest);
      assert.deepEqual(await multiTarget.fetchBytes(arm), multi.blobs.get(multi.images[1]!.manifest.digest));
    });

    test('a Docker manifest list resolves with its Docker media type', async () => {
      await pushLayout(multi, `${registry.host}/test/multi-docker:v1`, { creds: auth, format: 'v2s2' });
      const desc = await targetFor('test/multi-docker').resolve('v1');
      assert.equal(desc.mediaType, MEDIA_TYPE_DOCKER_MANIFEST_LIST);
    });

    test('streams every layer kind with digest verification and reports the bytes', async () => {
      for (const layer of oci.images[0]!.layers) {
        let counted = 0;
        const bytes = await collect(await target.fetch(layer, { onBytes: (n) => (counted += n) }));
        assert.deepEqual(bytes, Buffer.from(oci.blobs.get(layer.digest)!));
        assert.equal(counted, layer.size);
      }
    });

    test('ranged fetch returns the tail from the offset', async () => {
      const layer = oci.images[0]!.layers[0]!;
      const tail = await collect(await target.fetch(layer, { offset: 100_001 }));
      assert.deepEqual(tail, Buffer.from(oci.blobs.get(layer.digest)!.subarray(100_001)));
      assert.equal((await collect(await target.fetch(layer, { offset: layer.size }))).length, 0);
    });

    test('a descriptor with the wrong size fails instead of returning the bytes', async () => {
      const layer = oci.images[0]!.layers[1]!;
      await assert.rejects(collect(await target.fetch({ ...layer, size: layer.size - 10 })), {
        name: 'DigestMismatchError',
        errorKind: 'corrupt',
      });
    });

    test('exists tells present from absent blobs and manifests', async () => {
      assert.equal(await target.exists(oci.images[0]!.layers[0]!), true);
      assert.equal(await target.exists(oci.root), true);
      assert.equal(await target.exists(descriptorOf(deterministicBytes('absent', 10))), false);
      assert.equal(await target.exists({ ...oci.root, digest: sha256(deterministicBytes('absent', 10)) }), false);
    });

    test('pushes a small blob', async () => {
      const content = deterministicBytes('small-blob', 5000);
      const desc = descriptorOf(content);
      const pushTarget = targetFor('test/push-small');
      assert.equal(await pushTarget.exists(desc), false);
      await pushTarget.push(desc, content);
      assert.deepEqual(await pushTarget.fetchBytes(desc), content);
    });

    test('refuses to push content that does not match its descriptor', async () => {
      const content = deterministicBytes('mismatch', 100);
      await assert.rejects(target.push({ ...descriptorOf(content), digest: sha256(deterministicBytes('other', 100)) }, content), {
        name: 'DigestMismatchError',
        errorKind: 'corrupt',
      });
      await assert.rejects(target.push({ ...descriptorOf(content), size: 99 }, content), {
        name: 'DigestMismatchError',
        errorKind: 'corrupt',
      });
    });

    test('pushes a manifest by digest, tags it, and resolves the tag to it', async () => {
      const pushTarget = targetFor('test/pushed');
      const config = new TextEncoder().encode(
        JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
      );
      const configDesc = descriptorOf(config, 'application/vnd.oci.image.config.v1+json');
      const layer = deterministicBytes('pushed-layer', 3000);
      const layerDesc = descriptorOf(layer, 'application/vnd.oci.image.layer.v1.tar');
      const manifest = new TextEncoder().encode(
        JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_MANIFEST, config: configDesc, layers: [layerDesc] }),
      );
      const manifestDesc = descriptorOf(manifest, MEDIA_TYPE_OCI_MANIFEST);
      await pushTarget.push(configDesc, config);
      await pushTarget.push(layerDesc, layer);
      await pushTarget.push(manifestDesc, manifest);
      assert.equal(await pushTarget.exists(manifestDesc), true);
      await assert.rejects(pushTarget.resolve('release'), /manifest test\/pushed:release not found \(404 MANIFEST_UNKNOWN\)/);
      // A fresh target has no cached bytes: tag() must read the manifest by digest first.
      await targetFor('test/pushed').tag(manifestDesc, 'release');
      assert.deepEqual(await pushTarget.resolve('release'), manifestDesc);
    });

    test('a missing tag fails with a one-line error naming registry, repository and status', async () => {
      await assert.rejects(target.resolve('nope'), (err: unknown) => {
        assert.ok(err instanceof RegistryError);
        assert.equal(err.message, `registry ${registry.host}: manifest test/oci:nope not found (404 MANIFEST_UNKNOWN)`);
        assert.equal(err.kind, 'not-found');
        return true;
      });
    });

    test('bad input is refused before any request', async () => {
      assert.throws(() => targetFor('Bad/Repo'), { name: 'InvalidReferenceError' });
      await assert.rejects(target.resolve('bad tag'), { name: 'InvalidReferenceError' });
      await assert.rejects(target.fetch({ ...oci.root, digest: 'sha256:1234' }), { name: 'InvalidDigestError' });
      await assert.rejects(target.fetch(oci.images[0]!.layers[0]!, { offset: -1 }), { kind: 'invalid-input' });
    });

    if (auth) {
      test('without credentials, or with a wrong password, reads fail as unauthorized', async () => {
        for (const credentials of [async () => undefined, async () => ({ username: 'AWS', password: 'wrong' })]) {
          await assert.rejects(targetFor('test/oci', { credentials }).resolve('v1'), (err: unknown) => {
            assert.ok(err instanceof RegistryError);
            assert.equal(err.kind, 'unauthorized');
            assert.equal(err.message, `registry ${registry.host}: manifest test/oci:v1 unauthorized (401 UNAUTHORIZED)`);
            assert.doesNotMatch(err.message, /wrong/);
            return true;
          });
        }
      });
    }

    describe('chunked upload through a proxy that logs requests (and makes upload Locations relative)', () => {
      let proxy: FaultProxy;
      before(async () => {
        proxy = await startFaultProxy({ upstream: registry.host, relativeLocations: true });
      });
      after(() => proxy.stop());

      test('a blob above the monolithic limit streams up in one PATCH, then the closing PUT follows its Location', async () => {
        const content = deterministicBytes('chunked', 250_000);
        const desc = descriptorOf(content);
        const streamed = new RegistryTarget({
          registry: proxy.host,
          repository: 'test/chunked',
          credentials: async () => auth,
          monolithicLimit: 64 * 1024,
        });
        const start = proxy.requests.length;
        await streamed.push(desc, content);
        const session = proxy.requests.slice(start).filter((r) => r.status !== 401 && r.path.includes('/blobs/uploads/'));
        assert.deepEqual(
          session.map((r) => `${r.method} ${r.status}`),
          ['POST 202', 'PATCH 202', 'PUT 201'],
        );
        // docker-registry changes the session state on every PATCH; a stale Location would get 404.
        assert.notEqual(session[1]!.search, session[2]!.search.replace(/&digest=.*$/, ''));
        assert.deepEqual(await streamed.fetchBytes(desc), content);
      });

      test('a blob at or below the monolithic limit goes up in one PUT; pushing it again only checks it exists', async () => {
        const content = deterministicBytes('monolithic', 64 * 1024);
        const pushTarget = new RegistryTarget({
          registry: proxy.host,
          repository: 'test/chunked',
          credentials: async () => auth,
          monolithicLimit: 64 * 1024,
        });
        const methodsDuring = async (action: () => Promise<void>) => {
          const start = proxy.requests.length;
          await action();
          return proxy.requests
            .slice(start)
            .filter((r) => r.status !== 401)
            .map((r) => r.method);
        };
        assert.deepEqual(await methodsDuring(() => pushTarget.push(descriptorOf(content), content)), ['HEAD', 'POST', 'PUT']);
        assert.deepEqual(await methodsDuring(() => pushTarget.push(descriptorOf(content), content)), ['HEAD']);
      });
    });
  });
}
