// The soci core on an image held in a MemoryTarget (unit tier): no disk, no registry, no fixture to unpack.
// The layer is made here (tar-stream, node:zlib), so this shows the build, its v1 and v2 outputs and its
// re-run detection need nothing from a backend beyond the Target contract, and that a deadline passing
// between the last push and the tag leaves nothing tagged.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { MemoryTarget } from '../../lambda/memory/memory-target.ts';
import { descriptorFor } from '../../lambda/oci/digest.ts';
import { marshalManifest } from '../../lambda/oci/go-json.ts';
import {
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_LAYER_GZIP,
  MEDIA_TYPE_OCI_MANIFEST,
  SOCI_INDEX_ARTIFACT_TYPE_V1,
} from '../../lambda/oci/media-types.ts';
import type { Descriptor } from '../../lambda/oci/target.ts';
import { buildSociIndex, DEFAULT_BUILD_OPTIONS } from '../../lambda/soci/build.ts';
import { type BuildOptions, SociError } from '../../lambda/soci/types.ts';
import { tarBytes } from '../support/bytes.ts';

/** A gzip tar layer of three files, the largest 200 kB of varied bytes (so it spans several 64 KiB spans). */
async function gzipLayer(): Promise<Uint8Array> {
  const mtime = new Date('2024-01-01T00:00:00Z');
  const big = Buffer.alloc(200_000);
  for (let i = 0, x = 1; i < big.length; i++) big[i] = x = ((x * 1103515245 + 12345) >>> 16) & 0xff;
  const tar = await tarBytes((archive) => {
    archive.entry({ name: 'etc/', type: 'directory', mode: 0o755, mtime });
    archive.entry({ name: 'etc/hostname', mode: 0o644, mtime }, Buffer.from('memory\n'));
    archive.entry({ name: 'data.bin', mode: 0o644, mtime }, big);
  });
  return gzipSync(tar, { level: 6 });
}

async function memoryImage(): Promise<{ target: MemoryTarget; manifest: Descriptor; layer: Descriptor }> {
  const target = new MemoryTarget('build');
  const layerBytes = await gzipLayer();
  const layer = descriptorFor(MEDIA_TYPE_OCI_LAYER_GZIP, layerBytes);
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const config = descriptorFor(MEDIA_TYPE_OCI_CONFIG, configBytes);
  const manifestBytes = marshalManifest({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_MANIFEST, config, layers: [layer] });
  const manifest = descriptorFor(MEDIA_TYPE_OCI_MANIFEST, manifestBytes);
  await target.push(layer, layerBytes);
  await target.push(config, configBytes);
  await target.push(manifest, manifestBytes);
  await target.tag(manifest, 'app');
  return { target, manifest, layer };
}

const OPTIONS: BuildOptions = { ...DEFAULT_BUILD_OPTIONS, spanSize: 65536, minLayerSize: 0, concurrency: 1 };

describe('building on a MemoryTarget', () => {
  test('v2: a zTOC for the layer, the SOCI-enabled index tagged app-soci; a second run is already indexed and pushes nothing', async () => {
    const { target, layer } = await memoryImage();
    const result = await buildSociIndex(target, 'app', OPTIONS);
    assert.equal(result.status, 'created', result.message);
    const [platform] = result.platforms;
    assert.equal(platform?.layers[0]?.digest, layer.digest);
    const ztoc = platform?.layers[0]?.ztocDigest;
    assert.ok(ztoc && target.blobs.has(ztoc), 'the zTOC was pushed');
    assert.deepEqual(result.output?.tags, ['app-soci']);
    assert.equal((await target.resolve('app-soci')).digest, result.output?.digest);
    const stored = target.blobs.size;
    const again = await buildSociIndex(target, 'app', OPTIONS);
    assert.equal(again.status, 'already-indexed', again.message);
    assert.equal(target.blobs.size, stored);
  });

  test('an output tag naming a broken index (bytes that no longer match its digest) is not our output: built again', async () => {
    const { target } = await memoryImage();
    const first = await buildSociIndex(target, 'app', OPTIONS);
    assert.equal(first.status, 'created', first.message);
    const output = first.output!.digest;
    target.blobs.set(output, new TextEncoder().encode('{"schemaVersion": 2, "manifests": "broken"}'));
    const again = await buildSociIndex(target, 'app', OPTIONS);
    assert.equal(again.status, 'created', again.message);
    assert.equal(again.output?.digest, output, 'the same output, built again');
  });

  test('time up after the last push, before the tag: nothing tagged, a transient failure', async (t) => {
    const { target } = await memoryImage();
    // The clock jumps past the deadline once the SOCI-enabled index is pushed (the last push before tagging).
    const realNow = Date.now.bind(Date);
    const push = target.push.bind(target);
    t.mock.method(target, 'push', async (desc: Descriptor, bytes: Uint8Array) => {
      await push(desc, bytes);
      if (desc.mediaType === MEDIA_TYPE_OCI_INDEX) t.mock.method(Date, 'now', () => realNow() + 600_000);
    });
    await assert.rejects(buildSociIndex(target, 'app', { ...OPTIONS, deadline: realNow() + 300_000 }), (err: unknown) => {
      assert.ok(err instanceof SociError, String(err));
      assert.equal(err.kind, 'transient');
      assert.match(err.message, /^deadline: 0 ms left, not enough to start tagging app-soci .*nothing was tagged$/);
      return true;
    });
    await assert.rejects(target.resolve('app-soci'), { notFound: true });
  });

  test('v1: the SOCI index is found as a referrer of the image manifest', async () => {
    const { target, manifest } = await memoryImage();
    const result = await buildSociIndex(target, 'app', { ...OPTIONS, indexVersion: 'v1' });
    assert.equal(result.status, 'created', result.message);
    const referrers = await target.referrers(manifest, SOCI_INDEX_ARTIFACT_TYPE_V1);
    assert.deepEqual(
      referrers.map((r) => r.digest),
      [result.output?.digest],
    );
  });
});
