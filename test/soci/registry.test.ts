// The core against a real docker-registry (anonymous and with basic auth), seen through the test proxy so
// that writes can be counted: OCI and Docker-format single images and a two-platform index pushed with
// skopeo; complete output under `<tag>-soci`, untouched source, idempotent reruns, no-eligible-layers,
// digest references, in-place tagging, v1 through the referrers tag fallback.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { OciLayoutTarget } from '../../lambda/layout/oci-layout.ts';
import {
  ANNOTATION_IMAGE_LAYER_MEDIA_TYPE,
  ANNOTATION_SOCI_INDEX_DIGEST,
  MEDIA_TYPE_DOCKER_LAYER,
  MEDIA_TYPE_DOCKER_LAYER_GZIP,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  SOCI_INDEX_ARTIFACT_TYPE_V1,
  SOCI_INDEX_ARTIFACT_TYPE_V2,
} from '../../lambda/oci/media-types.ts';
import type { Descriptor } from '../../lambda/oci/target.ts';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { referrersTag } from '../../lambda/registry/referrers.ts';
import { buildSociIndex, DEFAULT_BUILD_OPTIONS } from '../../lambda/soci/build.ts';
import type { BuildEvent, BuildOptions, BuildResult } from '../../lambda/soci/types.ts';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { goldenPath, sha256Hex } from '../support/golden.ts';
import { type BuiltLayout, buildLayout, type LayerSpec, pushLayout } from '../support/images.ts';
import { goldenLayoutDir, layoutCopier } from '../support/layouts.ts';
import { type RunningRegistry, startRegistry } from '../support/registry.ts';
import { watchWrites } from '../support/writes.ts';
import { assertComplete, readJson } from './helpers.ts';

const copyLayout = await layoutCopier('registry-golden');

const LAYERS: LayerSpec[] = [
  {
    compression: 'gzip',
    files: [
      { name: 'app/big.bin', size: 300_000 },
      { name: 'app/readme.txt', size: 3000 },
    ],
  },
  { compression: 'uncompressed', files: [{ name: 'data/table.bin', size: 200_000 }] },
  { compression: 'gzip', files: [{ name: 'etc/small.conf', size: 400 }] },
  { compression: 'zstd', files: [{ name: 'opt/packed.bin', size: 200_000 }] },
];
const options: BuildOptions = { ...DEFAULT_BUILD_OPTIONS, spanSize: 65536, minLayerSize: 100_000, concurrency: 2 };

for (const auth of [false, true]) {
  describe(`soci core against docker-registry (${auth ? 'basic auth' : 'anonymous'})`, () => {
    const creds = auth ? { username: 'AWS', password: 'soci-core-pw' } : undefined;
    let registry: RunningRegistry;
    let proxy: FaultProxy;
    let single: BuiltLayout;
    let multi: BuiltLayout;
    let docker: BuiltLayout;
    const target = (repository: string) =>
      new RegistryTarget({ registry: proxy.host, repository, retry: { baseDelayMs: 5 }, ...(creds && { credentials: async () => creds }) });
    const push = (layout: BuiltLayout, ref: string, format?: 'v2s2') =>
      pushLayout(layout, `${registry.host}/${ref}`, { ...(creds && { creds }), ...(format && { format }) });

    before(async () => {
      registry = await startRegistry(creds ? { auth: creds } : {});
      proxy = await startFaultProxy({ upstream: registry.host });
      single = await buildLayout({ layers: LAYERS, tag: 'v1' });
      multi = await buildLayout({
        layers: LAYERS.slice(0, 2),
        tag: 'v2',
        platforms: [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64', variant: 'v8' },
        ],
      });
      await push(single, 'team/app:v1');
      // Docker schema 2 has no zstd layer type; skopeo converts the rest (and gzips the plain tar).
      docker = await buildLayout({ layers: LAYERS.slice(0, 3), tag: 'v1' });
      await push(docker, 'team/docker:v1', 'v2s2');
      await push(multi, 'team/multi:v2');
    });
    after(async () => {
      await proxy?.stop();
      await registry?.stop();
    });

    // Anchored on upstream's bytes, not only on another run of this code (once: auth changes no byte).
    if (!auth)
      test('the golden image pushed to the registry gives the golden SOCI index bytes (v2 and v1)', async () => {
        const { dir } = await copyLayout(goldenLayoutDir());
        await pushLayout({ dir, tag: 'golden' }, `${registry.host}/golden/app:golden`);
        const golden = (file: string) => readFile(goldenPath('index', 'a-span4m-min1MiB', file));
        const digestOf = (bytes: Buffer) => `sha256:${sha256Hex(bytes)}`;
        const settings = { ...options, spanSize: 4194304, minLayerSize: 1048576, buildToolId: 'AWS SOCI CLI v0.2' };
        const repo = target('golden/app');

        const v2 = await buildSociIndex(repo, 'golden', settings);
        assert.equal(v2.status, 'created', v2.message);
        assert.equal(v2.output?.digest, digestOf(await golden('converted-oci-index.json')));
        for (const [digest, file] of [
          [v2.platforms[0]!.indexDigest, 'soci-index-v2.json'],
          [v2.platforms[0]!.convertedManifestDigest, 'converted-image-manifest.json'],
          [v2.output?.digest, 'converted-oci-index.json'],
        ] as const) {
          const stored = Buffer.from(await repo.fetchBytes(await repo.resolve(digest!)));
          assert.ok(stored.equals(await golden(file)), file);
        }

        const v1 = await buildSociIndex(repo, 'golden', { ...settings, indexVersion: 'v1' });
        assert.equal(v1.status, 'created', v1.message);
        const expected = digestOf(await golden('soci-index-v1.json'));
        assert.equal(v1.output?.digest, expected);
        assert.ok(Buffer.from(await repo.fetchBytes(await repo.resolve(expected))).equals(await golden('soci-index-v1.json')));
        const image = await repo.resolve('golden');
        assert.deepEqual(
          (await repo.referrers(image, SOCI_INDEX_ARTIFACT_TYPE_V1)).map((r) => r.digest),
          [expected],
        );
      });

    /** Builds, then checks the invariants every v2 output has; returns the result and the output index. */
    async function buildV2(
      repository: string,
      tag: string,
      extra: Partial<BuildOptions> = {},
    ): Promise<{ result: BuildResult; index: any; repo: RegistryTarget }> {
      const repo = target(repository);
      const source = await repo.resolve(tag);
      const sourceBytes = Buffer.from(await repo.fetchBytes(source));
      const result = await buildSociIndex(repo, tag, { ...options, ...extra });
      assert.equal(result.status, 'created', result.message);
      assert.equal(result.source.digest, source.digest);
      const output = await target(repository).resolve(`${tag}-soci`);
      assert.equal(output.digest, result.output?.digest);
      assert.equal(output.mediaType, MEDIA_TYPE_OCI_INDEX);
      await assertComplete(target(repository), output);
      // The source tag still names the same bytes.
      const after = await target(repository).resolve(tag);
      assert.equal(after.digest, source.digest);
      assert.ok(Buffer.from(await target(repository).fetchBytes(after)).equals(sourceBytes));
      return { result, index: await readJson(target(repository), output), repo };
    }

    test('single-platform OCI image: complete output, source untouched, same digests as from the layout', async () => {
      const events: BuildEvent[] = [];
      const { result, index } = await buildV2('team/app', 'v1', { onEvent: (e) => events.push(e) });
      const layers = result.platforms[0]!.layers;
      assert.deepEqual(
        layers.map((l) => l.status),
        ['indexed', 'indexed', 'skipped', 'skipped'],
      );
      assert.match(layers[2]!.reason!, /^below minimum layer size \(\d+ < 100000\)$/);
      assert.equal(layers[3]!.reason, 'zstd layers cannot be indexed');
      assert.deepEqual(result.output?.tags, ['v1-soci']);
      // The two indexed layers, each read exactly once (nothing else is read: the output is the source).
      assert.equal(result.bytesRead, single.images[0]!.layers[0]!.size + single.images[0]!.layers[1]!.size);
      assert.deepEqual(
        index.manifests.map((m: Descriptor) => m.artifactType ?? 'image'),
        ['image', SOCI_INDEX_ARTIFACT_TYPE_V2],
      );
      assert.deepEqual(
        events.filter((e) => e.type === 'tag').map((e) => e.type === 'tag' && e.tag),
        ['v1-soci'],
      );
      const pushes = events.flatMap((e) => (e.type === 'push' ? [e.what] : []));
      assert.deepEqual(pushes.slice(-3), ['soci-index', 'image-manifest', 'image-index'], 'children first');

      // The same image from its OCI layout gives the same bytes: the output depends on content only.
      const fromLayout = await buildSociIndex(await OciLayoutTarget.open(single.dir), 'v1', { ...options, dryRun: true });
      assert.equal(fromLayout.output?.digest, result.output?.digest);
    });

    test('a second run reports already indexed and writes nothing', async () => {
      await push(single, 'team/rerun:v1');
      await buildV2('team/rerun', 'v1');
      const first = await target('team/rerun').resolve('v1-soci');
      const written = watchWrites(proxy.requests);
      const again = await buildSociIndex(target('team/rerun'), 'v1', options);
      assert.equal(again.status, 'already-indexed');
      assert.equal(again.message, 'already indexed');
      assert.equal(again.output?.digest, first.digest);
      assert.equal(again.bytesRead, 0);
      assert.deepEqual(written(), []);
      assert.equal(again.platforms[0]!.layers.filter((l) => l.status === 'indexed').length, 2);
    });

    test('Docker-format image: manifests converted to OCI, layers keep their Docker media types', async () => {
      const { result, index } = await buildV2('team/docker', 'v1');
      assert.equal(result.source.mediaType, MEDIA_TYPE_DOCKER_MANIFEST);
      const [image, soci] = index.manifests as Descriptor[];
      assert.equal(image!.mediaType, MEDIA_TYPE_OCI_MANIFEST);
      const converted = await readJson(target('team/docker'), image!);
      assert.equal(converted.mediaType, MEDIA_TYPE_OCI_MANIFEST);
      assert.equal(converted.config.mediaType, MEDIA_TYPE_OCI_CONFIG);
      // skopeo gzips the plain tar or keeps it as `rootfs.diff.tar`, which soci reads as a tar.
      const layerTypes = (converted.layers as Descriptor[]).map((l) => l.mediaType);
      assert.ok(
        layerTypes.every((t) => t === MEDIA_TYPE_DOCKER_LAYER_GZIP || t === MEDIA_TYPE_DOCKER_LAYER),
        layerTypes.join(),
      );
      assert.equal(converted.annotations[ANNOTATION_SOCI_INDEX_DIGEST], soci!.digest);
      const sociIndex = await readJson(target('team/docker'), soci!);
      const indexed = result.platforms[0]!.layers.filter((l) => l.status === 'indexed');
      assert.equal(indexed.length, 2, 'the two layers above the minimum size');
      assert.deepEqual(
        (sociIndex.layers as Descriptor[]).map((z) => z.annotations?.[ANNOTATION_IMAGE_LAYER_MEDIA_TYPE]),
        indexed.map((l) => l.mediaType),
      );
      assert.equal((await buildSociIndex(target('team/docker'), 'v1', options)).status, 'already-indexed');
    });

    test('two-platform image index: one SOCI index per platform, every manifest rewritten', async () => {
      const { result, index } = await buildV2('team/multi', 'v2');
      assert.deepEqual(
        result.platforms.map((p) => p.platform),
        ['linux/amd64', 'linux/arm64/v8'],
      );
      assert.deepEqual(
        result.platforms.map((p) => p.manifestDigest),
        multi.images.map((i) => i.manifest.digest),
      );
      const entries = index.manifests as Descriptor[];
      assert.equal(entries.length, 4);
      for (const platform of result.platforms) {
        const image = entries.find((e) => e.digest === platform.convertedManifestDigest)!;
        const soci = entries.find((e) => e.digest === platform.indexDigest)!;
        assert.deepEqual(soci.platform, image.platform);
        assert.equal(soci.annotations?.['com.amazon.soci.image-manifest-digest'], image.digest);
        assert.equal(image.annotations?.[ANNOTATION_SOCI_INDEX_DIGEST], soci.digest);
      }
      const written = watchWrites(proxy.requests);
      assert.equal((await buildSociIndex(target('team/multi'), 'v2', options)).status, 'already-indexed');
      assert.deepEqual(written(), []);
      // A different platform selection is other output: built again, under the same tag.
      const arm = await buildSociIndex(target('team/multi'), 'v2', { ...options, platforms: ['linux/arm64'] });
      assert.equal(arm.status, 'created');
      assert.notEqual(arm.output?.digest, result.output?.digest);
    });

    test('no layer at or above the minimum size: nothing pushed, no tag', async () => {
      await push(single, 'team/tiny:v1');
      const written = watchWrites(proxy.requests);
      const result = await buildSociIndex(target('team/tiny'), 'v1', { ...options, minLayerSize: 10 * 1024 * 1024 });
      assert.equal(result.status, 'no-eligible-layers');
      assert.equal(result.message, 'no layer at or above the minimum size');
      assert.equal(result.output, undefined);
      assert.deepEqual(written(), []);
      await assert.rejects(target('team/tiny').resolve('v1-soci'), { name: 'RegistryError', kind: 'not-found' });
    });

    test('by digest: the output is pushed but not tagged (said so); explicit tags and in-place tag it', async () => {
      await push(single, 'team/bydigest:v1');
      const repo = target('team/bydigest');
      const source = await repo.resolve('v1');
      const events: BuildEvent[] = [];
      const untagged = await buildSociIndex(repo, source.digest, { ...options, onEvent: (e) => events.push(e) });
      assert.equal(untagged.status, 'created');
      assert.deepEqual(untagged.output?.tags, []);
      const why = 'the source was given by digest without a tag, so the output is not tagged (name output tags explicitly)';
      assert.equal(
        untagged.message,
        `created SOCI index v2 for 1 platform (${untagged.platforms[0]!.layers.filter((l) => l.ztocDigest).length} zTOCs), untagged: ${why}`,
      );
      assert.ok(events.some((e) => e.type === 'log' && e.level === 'warn' && e.message === why));
      await assertComplete(repo, await repo.resolve(untagged.output!.digest));
      // Again by digest: recognised once the output digest is known; nothing written.
      const written = watchWrites(proxy.requests);
      assert.equal((await buildSociIndex(repo, source.digest, options)).status, 'already-indexed');
      assert.deepEqual(written(), []);

      const tagged = await buildSociIndex(repo, source.digest, { ...options, tagPolicy: { mode: 'tags', tags: ['deploy', 'deploy-2'] } });
      assert.deepEqual(tagged.output?.tags, ['deploy', 'deploy-2']);
      assert.equal((await repo.resolve('deploy-2')).digest, untagged.output?.digest);

      const warnings: string[] = [];
      const inPlace = await buildSociIndex(repo, 'v1', {
        ...options,
        tagPolicy: { mode: 'in-place' },
        onEvent: (e) => e.type === 'log' && e.level === 'warn' && warnings.push(e.message),
      });
      assert.deepEqual(inPlace.output?.tags, ['v1']);
      assert.equal((await repo.resolve('v1')).digest, untagged.output?.digest);
      assert.deepEqual(warnings, [`in place: tag v1 will name the SOCI-enabled index instead of the image ${source.digest}`]);
      // The tag now names our output: a rerun recognises it and does nothing.
      const rerun = await buildSociIndex(repo, 'v1', { ...options, tagPolicy: { mode: 'in-place' } });
      assert.equal(rerun.status, 'already-indexed');
      assert.match(
        rerun.message,
        /^already indexed: .+ v1 is an image index that already carries SOCI v2 content \(sha256:[0-9a-f]{64}\)$/,
      );
    });

    test('v1: the index has subject and is found through the referrers tag fallback', async () => {
      await push(single, 'team/legacy:v1');
      const repo = target('team/legacy');
      const source = await repo.resolve('v1');
      const result = await buildSociIndex(repo, 'v1', { ...options, indexVersion: 'v1' });
      assert.equal(result.status, 'created', result.message);
      assert.deepEqual(result.output?.tags, []);
      assert.equal(result.output?.digest, result.platforms[0]!.indexDigest);
      const referrers = await target('team/legacy').referrers(source, SOCI_INDEX_ARTIFACT_TYPE_V1);
      assert.deepEqual(
        referrers.map((r) => r.digest),
        [result.output?.digest],
      );
      assert.equal((await target('team/legacy').resolve(referrersTag(source.digest))).mediaType, MEDIA_TYPE_OCI_INDEX);
      const index = await readJson(repo, referrers[0]!);
      assert.deepEqual(index.subject, { mediaType: source.mediaType, digest: source.digest, size: source.size });
      await assertComplete(repo, referrers[0]!);
      await assert.rejects(repo.resolve('v1-soci'), { name: 'RegistryError', kind: 'not-found' });

      const written = watchWrites(proxy.requests);
      const again = await buildSociIndex(target('team/legacy'), 'v1', { ...options, indexVersion: 'v1' });
      assert.equal(again.status, 'already-indexed');
      assert.equal(again.output?.digest, result.output?.digest);
      assert.deepEqual(written(), []);
    });
  });
}
