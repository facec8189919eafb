// The core on OCI layouts built from golden layers: per-layer skips (size, zstd, a layer whose zTOC cannot
// be built), refusals (non-layer blobs, SOCI artifacts, our own output), another layout as output, dry
// runs, deadlines and aborts. Everything here checks what ends up on disk, not only the result object.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { OciLayoutTarget } from '../../lambda/layout/oci-layout.ts';
import { descriptorFor } from '../../lambda/oci/digest.ts';
import { marshalManifest } from '../../lambda/oci/go-json.ts';
import {
  ANNOTATION_SOCI_INDEX_DIGEST,
  EMPTY_JSON_CONFIG,
  MEDIA_TYPE_OCI_EMPTY,
  MEDIA_TYPE_OCI_LAYER,
  MEDIA_TYPE_OCI_LAYER_GZIP,
  MEDIA_TYPE_OCI_LAYER_ZSTD,
  MEDIA_TYPE_OCI_MANIFEST,
  SOCI_INDEX_ARTIFACT_TYPE_V2,
} from '../../lambda/oci/media-types.ts';
import type { Descriptor } from '../../lambda/oci/target.ts';
import { buildSociIndex, DEFAULT_BUILD_OPTIONS } from '../../lambda/soci/build.ts';
import { type BuildEvent, type BuildOptions, SociError } from '../../lambda/soci/types.ts';
import { emptyMembersLayer } from '../support/hostile-layers.ts';
import { assertComplete, goldenLayerInput, newLayout, pushImage, pushIndex, readJson } from './helpers.ts';

const scratch = await mkdtemp(join(tmpdir(), 'soci-layout-'));
after(() => rm(scratch, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(scratch, `l${dirs++}`);

const options: BuildOptions = { ...DEFAULT_BUILD_OPTIONS, spanSize: 65536, minLayerSize: 1000, concurrency: 2 };

/** Every file of a layout, with its bytes, to prove a run wrote nothing. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const name of await readdir(dir, { recursive: true })) {
    const bytes = await readFile(join(dir, name)).catch(() => undefined);
    if (bytes) files.set(name, bytes.toString('base64'));
  }
  return files;
}

async function mixedImage(): Promise<{ dir: string; layout: OciLayoutTarget; manifest: Descriptor }> {
  const dir = freshDir();
  const layout = await newLayout(dir);
  const manifest = await pushImage(layout, [
    await goldenLayerInput('gotar-mini.tar.gzip6n.gz', MEDIA_TYPE_OCI_LAYER_GZIP),
    // A plain tar declared as gzip: its zTOC cannot be built.
    await goldenLayerInput('gotar-mini.tar', MEDIA_TYPE_OCI_LAYER_GZIP),
    await goldenLayerInput('tiny-gnu.tar.gz', MEDIA_TYPE_OCI_LAYER_GZIP),
    await goldenLayerInput('gotar-mini.tar', MEDIA_TYPE_OCI_LAYER),
  ]);
  await layout.tag(manifest, 'app');
  return { dir, layout, manifest };
}

describe('soci core on OCI layouts', () => {
  test('a layer whose zTOC cannot be built is skipped with its reason; the others are indexed', async () => {
    const { layout } = await mixedImage();
    const events: BuildEvent[] = [];
    const result = await buildSociIndex(layout, 'app', { ...options, onEvent: (e) => events.push(e) });
    assert.equal(result.status, 'created', result.message);
    const layers = result.platforms[0]!.layers;
    assert.deepEqual(
      layers.map((l) => l.status),
      ['indexed', 'skipped', 'skipped', 'indexed'],
    );
    assert.match(layers[1]!.reason!, /^cannot be indexed: not a gzip stream/);
    assert.equal(layers[2]!.reason, 'below minimum layer size (125 < 1000)');
    assert.ok(events.some((e) => e.type === 'log' && e.level === 'warn' && e.message.includes(layers[1]!.digest)));
    // The same blob declared as a plain tar is indexed: layers are keyed by digest and compression.
    assert.equal(layers[3]!.digest, layers[1]!.digest);

    const index = await layout.resolve(result.platforms[0]!.indexDigest!);
    const ztocs = (await readJson(layout, index)).layers as Descriptor[];
    assert.deepEqual(
      ztocs.map((z) => z.digest),
      [layers[0]!.ztocDigest, layers[3]!.ztocDigest],
    );
    await assertComplete(layout, await layout.resolve('app-soci'));
    // Each distinct (digest, compression) layer is read exactly once: the layer below the minimum size is
    // not read at all; the plain tar declared as gzip is given up after its first read, and a layout read
    // is 1 MiB, more than that whole blob, so it counts in full next to the two indexed ones.
    assert.equal(result.bytesRead, 315673 + 785920 + 785920);
  });

  test('a layer past an engine limit is skipped with the code limit-exceeded; the others are indexed', async () => {
    const dir = freshDir();
    const layout = await newLayout(dir);
    const manifest = await pushImage(layout, [
      await goldenLayerInput('gotar-mini.tar.gzip6n.gz', MEDIA_TYPE_OCI_LAYER_GZIP),
      // 100 empty gzip members: 100 checkpoints at output 0, past the 64 allowed beyond one per span.
      { mediaType: MEDIA_TYPE_OCI_LAYER_GZIP, bytes: emptyMembersLayer(100) },
    ]);
    await layout.tag(manifest, 'limits');
    const result = await buildSociIndex(layout, 'limits', options);
    assert.equal(result.status, 'created', result.message);
    const layers = result.platforms[0]!.layers;
    assert.deepEqual(
      layers.map((l) => [l.status, l.skipCode, l.code]),
      [
        ['indexed', undefined, undefined],
        ['skipped', 'limit-exceeded', 'limit-exceeded'],
      ],
    );
    assert.match(layers[1]!.reason!, /^cannot be indexed: .*\(limit extraCheckpoints/);
  });

  test('a descriptor that is not a layer fails the image with a permanent error naming it', async () => {
    const layout = await newLayout(freshDir());
    const manifest = await pushImage(layout, [{ mediaType: 'application/vnd.example.thing', bytes: Buffer.from('x'.repeat(2000)) }]);
    await layout.tag(manifest, 'odd');
    await assert.rejects(buildSociIndex(layout, 'odd', options), (err: unknown) => {
      assert.ok(err instanceof SociError);
      assert.equal(err.kind, 'permanent');
      assert.match(err.message, /^.+: sha256:[0-9a-f]{64} has media type "application\/vnd\.example\.thing", which is not a layer type$/);
      return true;
    });
  });

  test('an image config over 4 MiB is refused before it is read: permanent, limit-exceeded', async () => {
    const layout = await newLayout(freshDir());
    const oversized = { os: 'linux', architecture: 'amd64', variant: 'x'.repeat(4 * 1024 * 1024) };
    const manifest = await pushImage(layout, [await goldenLayerInput('gotar-mini.tar.gzip6n.gz', MEDIA_TYPE_OCI_LAYER_GZIP)], oversized);
    await layout.tag(manifest, 'fat');
    await assert.rejects(buildSociIndex(layout, 'fat', options), (err: unknown) => {
      assert.ok(err instanceof SociError);
      assert.equal(err.kind, 'permanent');
      assert.match(err.message, /image config: sha256:[0-9a-f]{64} is \d+ bytes, over the 4 MiB limit \(max-config-bytes\)/);
      assert.equal((err.cause as { code?: string }).code, 'limit-exceeded');
      return true;
    });
  });

  test('zstd only: no eligible layers, nothing written', async () => {
    const dir = freshDir();
    const layout = await newLayout(dir);
    const manifest = await pushImage(layout, [{ mediaType: MEDIA_TYPE_OCI_LAYER_ZSTD, bytes: Buffer.alloc(5000, 1) }]);
    await layout.tag(manifest, 'z');
    const before = await snapshot(dir);
    const result = await buildSociIndex(layout, 'z', options);
    assert.equal(result.status, 'no-eligible-layers');
    assert.equal(result.message, 'no indexable layer at or above the minimum size (zstd layers cannot be indexed)');
    assert.deepEqual(await snapshot(dir), before);

    const small = await buildSociIndex(layout, 'z', { ...options, minLayerSize: 10_000 });
    assert.equal(small.status, 'no-eligible-layers');
    assert.equal(small.message, 'no layer at or above the minimum size');
    assert.equal(small.platforms[0]!.layers[0]!.reason, 'below minimum layer size (5000 < 10000)');
  });

  test('a SOCI index artifact is not an image; an index carrying SOCI descriptors is our own output', async () => {
    const { layout } = await mixedImage();
    const created = await buildSociIndex(layout, 'app', options);
    const sociIndex = await layout.resolve(created.platforms[0]!.indexDigest!);
    await layout.tag(sociIndex, 'artifact');
    const artifact = await buildSociIndex(layout, 'artifact', options);
    assert.equal(artifact.status, 'not-an-image');
    assert.match(
      artifact.message,
      /^not an image: .+ artifact is a SOCI index artifact \(config media type application\/vnd\.amazon\.soci\.index\.v\d\+json\)$/,
    );

    const own = await buildSociIndex(layout, 'app-soci', options);
    assert.equal(own.status, 'already-indexed');
    assert.equal(own.output?.digest, created.output?.digest);
    // The converted image manifest on its own is recognised too.
    const converted = await layout.resolve(created.platforms[0]!.convertedManifestDigest!);
    assert.ok((await readJson(layout, converted)).annotations[ANNOTATION_SOCI_INDEX_DIGEST]);
    await layout.tag(converted, 'converted');
    assert.equal((await buildSociIndex(layout, 'converted', options)).status, 'already-indexed');
  });

  test('a second run with the same settings writes nothing; other settings build again', async () => {
    const { dir, layout } = await mixedImage();
    const first = await buildSociIndex(layout, 'app', options);
    const before = await snapshot(dir);
    const again = await buildSociIndex(layout, 'app', options);
    assert.equal(again.status, 'already-indexed');
    assert.equal(again.message, 'already indexed');
    assert.equal(again.output?.digest, first.output?.digest);
    const summary = (r: typeof first) =>
      r.platforms.map((p) => [p.manifestDigest, p.indexDigest, p.convertedManifestDigest, p.layers.map((l) => l.ztocDigest ?? l.status)]);
    assert.deepEqual(summary(again), summary(first));
    assert.equal(again.bytesRead, 0);
    assert.deepEqual(await snapshot(dir), before);

    for (const changed of [
      { spanSize: 131072 },
      { buildToolId: 'other tool' },
      { minLayerSize: 400_000 },
      { prefetchFiles: ['/etc/hostname'] },
    ]) {
      const rebuilt = await buildSociIndex(layout, 'app', { ...options, ...changed });
      assert.equal(rebuilt.status, 'created', JSON.stringify(changed));
      assert.notEqual(rebuilt.output?.digest, first.output?.digest, JSON.stringify(changed));
    }
  });

  test('output into another layout copies the image it needs and leaves the source untouched', async () => {
    const { dir, layout } = await mixedImage();
    const before = await snapshot(dir);
    const outDir = freshDir();
    const output = await newLayout(outDir);
    const result = await buildSociIndex(layout, 'app', { ...options, tagPolicy: { mode: 'tags', tags: ['indexed', 'latest'] } }, output);
    assert.equal(result.status, 'created', result.message);
    assert.deepEqual(result.output?.tags, ['indexed', 'latest']);
    assert.deepEqual(await snapshot(dir), before);
    const tagged = await output.resolve('indexed');
    assert.equal(tagged.digest, result.output?.digest);
    assert.equal((await output.resolve('latest')).digest, tagged.digest);
    const seen = await assertComplete(output, tagged);
    assert.ok(seen.has(result.platforms[0]!.layers[0]!.digest));

    // The same build into the source layout gives the same digests.
    const inPlace = await buildSociIndex(layout, 'app', options);
    assert.equal(inPlace.output?.digest, result.output?.digest);
  });

  test('a dry run computes every digest and writes nothing', async () => {
    const { dir, layout } = await mixedImage();
    const before = await snapshot(dir);
    const dry = await buildSociIndex(layout, 'app', { ...options, dryRun: true });
    assert.equal(dry.dryRun, true);
    assert.equal(dry.status, 'created');
    assert.deepEqual(await snapshot(dir), before);
    const real = await buildSociIndex(layout, 'app', options);
    assert.equal(real.output?.digest, dry.output?.digest);
    assert.deepEqual(
      real.platforms.map((p) => [p.indexDigest, p.convertedManifestDigest]),
      dry.platforms.map((p) => [p.indexDigest, p.convertedManifestDigest]),
    );
  });

  test('past the deadline the build stops before reading layers, transiently, having written nothing', async () => {
    const { dir, layout } = await mixedImage();
    const before = await snapshot(dir);
    const events: BuildEvent[] = [];
    await assert.rejects(
      buildSociIndex(layout, 'app', { ...options, deadline: Date.now() + 500, onEvent: (e) => events.push(e) }),
      (err: unknown) => {
        assert.ok(err instanceof SociError);
        assert.equal(err.kind, 'transient');
        assert.match(err.message, /^deadline: .*reading layers/);
        return true;
      },
    );
    assert.equal(events.filter((e) => e.type === 'layer-start').length, 0);
    assert.deepEqual(await snapshot(dir), before);
  });

  test('a deadline reached while layers are read stops before pushing, having written nothing', async () => {
    const { dir, layout } = await mixedImage();
    const before = await snapshot(dir);
    // The deadline moves closer once the first layer is being read: reading was allowed, pushing is not, so
    // no zTOC is written whichever layer finishes first. (Not on the first layer-done: that may be an
    // indexed layer whose zTOC was already pushed, or only a skipped one, depending on the image.)
    const opts: BuildOptions = { ...options, deadline: Date.now() + 60_000 };
    opts.onEvent = (e) => {
      if (e.type === 'layer-start') opts.deadline = Date.now() + 100;
    };
    await assert.rejects(
      buildSociIndex(layout, 'app', opts),
      (err: unknown) => err instanceof SociError && err.kind === 'transient' && /^deadline: .*pushing/.test(err.message),
    );
    assert.deepEqual(await snapshot(dir), before);
  });

  test('an aborted build rejects with the abort reason and writes nothing', async () => {
    const { dir, layout } = await mixedImage();
    const before = await snapshot(dir);
    const controller = new AbortController();
    controller.abort(new SociError('transient', 'deadline exceeded: stopped'));
    await assert.rejects(buildSociIndex(layout, 'app', { ...options, signal: controller.signal }), {
      name: 'SociError',
      kind: 'transient',
      message: 'deadline exceeded: stopped',
    });
    assert.deepEqual(await snapshot(dir), before);
  });

  test('multi-platform: shared layers are read once; a platform filter indexes only that platform', async () => {
    const dir = freshDir();
    const layout = await newLayout(dir);
    const shared = await goldenLayerInput('gotar-mini.tar.gzip6n.gz', MEDIA_TYPE_OCI_LAYER_GZIP);
    const amd64 = await pushImage(layout, [shared]);
    const arm64 = await pushImage(layout, [shared], { os: 'linux', architecture: 'arm64', variant: 'v8' });
    // An attestation manifest, as BuildKit adds them: not an image to index, but converted like upstream.
    const attestationBytes = marshalManifest({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      config: { mediaType: MEDIA_TYPE_OCI_EMPTY, digest: EMPTY_JSON_CONFIG.digest, size: 2 },
      layers: [],
    });
    await layout.push({ mediaType: MEDIA_TYPE_OCI_EMPTY, digest: EMPTY_JSON_CONFIG.digest, size: 2 }, Buffer.from('{}'));
    const attestation = descriptorFor(MEDIA_TYPE_OCI_MANIFEST, attestationBytes);
    await layout.push(attestation, attestationBytes);
    const index = await pushIndex(layout, [
      { ...amd64, platform: { os: 'linux', architecture: 'amd64' } },
      { ...arm64, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      {
        ...attestation,
        platform: { os: 'unknown', architecture: 'unknown' },
        annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': amd64.digest },
      },
    ]);
    await layout.tag(index, 'multi');

    const events: BuildEvent[] = [];
    const all = await buildSociIndex(layout, 'multi', { ...options, onEvent: (e) => events.push(e) });
    assert.equal(all.status, 'created', all.message);
    assert.deepEqual(
      all.platforms.map((p) => p.platform),
      ['linux/amd64', 'linux/arm64/v8'],
    );
    assert.equal(all.bytesRead, shared.bytes.length, 'the shared layer is read once');
    assert.equal(events.filter((e) => e.type === 'layer-start').length, 1);
    assert.equal(events.filter((e) => e.type === 'layer-done').length, 2);
    const out = await readJson(layout, await layout.resolve('multi-soci'));
    const entries = out.manifests as Descriptor[];
    assert.equal(entries.length, 5, '3 rewritten manifests + 2 SOCI indexes');
    assert.deepEqual(
      entries.slice(3).map((e) => [e.artifactType, e.platform]),
      [
        [SOCI_INDEX_ARTIFACT_TYPE_V2, { os: 'linux', architecture: 'amd64' }],
        [SOCI_INDEX_ARTIFACT_TYPE_V2, { os: 'linux', architecture: 'arm64', variant: 'v8' }],
      ],
    );
    assert.equal(
      entries[2]!.annotations?.['vnd.docker.reference.type'],
      undefined,
      'descriptor annotations are the manifest annotations, as upstream',
    );
    await assertComplete(layout, await layout.resolve('multi-soci'));

    const arm = await buildSociIndex(layout, 'multi', {
      ...options,
      platforms: ['linux/aarch64'],
      tagPolicy: { mode: 'tags', tags: ['arm'] },
    });
    assert.deepEqual(
      arm.platforms.map((p) => p.platform),
      ['linux/arm64/v8'],
    );
    const armEntries = (await readJson(layout, await layout.resolve('arm'))).manifests as Descriptor[];
    const sociEntries = (entries: Descriptor[]) => entries.filter((e) => e.artifactType === SOCI_INDEX_ARTIFACT_TYPE_V2);
    // Upstream records the platform as asked (containerd platforms.Parse), not the image's own.
    assert.deepEqual(
      sociEntries(armEntries).map((e) => e.platform),
      [{ os: 'linux', architecture: 'arm64' }],
    );
    assert.equal(armEntries.filter((e) => e.annotations?.[ANNOTATION_SOCI_INDEX_DIGEST] !== undefined).length, 1);

    // Several platforms: built and listed in the order asked, duplicates dropped, as upstream's convert.
    const both = await buildSociIndex(layout, 'multi', {
      ...options,
      platforms: ['linux/arm64/v8', 'linux/amd64', 'linux/aarch64'],
      tagPolicy: { mode: 'tags', tags: ['both'] },
    });
    assert.deepEqual(
      both.platforms.map((p) => p.platform),
      ['linux/arm64/v8', 'linux/amd64'],
    );
    const bothEntries = (await readJson(layout, await layout.resolve('both'))).manifests as Descriptor[];
    assert.deepEqual(
      sociEntries(bothEntries).map((e) => e.platform),
      [
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
        { os: 'linux', architecture: 'amd64' },
      ],
    );
    // A platform the image lacks is skipped as long as another one matches.
    const some = await buildSociIndex(layout, 'multi', {
      ...options,
      platforms: ['linux/s390x', 'linux/amd64'],
      tagPolicy: { mode: 'tags', tags: ['some'] },
    });
    assert.deepEqual(
      some.platforms.map((p) => p.platform),
      ['linux/amd64'],
    );

    await assert.rejects(
      buildSociIndex(layout, 'multi', { ...options, platforms: ['linux/s390x'] }),
      /no image for platform linux\/s390x \(it has linux\/amd64, linux\/arm64\/v8\)/,
    );
  });
});
