import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MediaTypeError } from '../../lambda/oci/errors.ts';
import { isIndex, isLayer, isManifest, layerCompression } from '../../lambda/oci/media-types.ts';

describe('layer classification (docs/format.md §4.3, containerd IsLayerType / DiffCompression)', () => {
  const table: [string, ReturnType<typeof layerCompression>][] = [
    ['application/vnd.oci.image.layer.v1.tar+gzip', 'gzip'],
    ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'gzip'],
    ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'gzip'],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'gzip'],
    ['application/vnd.oci.image.layer.v1.tar+zstd', 'zstd'],
    ['application/vnd.docker.image.rootfs.diff.tar.zstd', 'zstd'],
    ['application/vnd.oci.image.layer.v1.tar', 'uncompressed'],
    ['application/vnd.docker.image.rootfs.diff.tar', 'unknown'],
    ['application/vnd.docker.image.rootfs.foreign.diff.tar', 'unknown'],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar', 'unsupported'],
    ['application/vnd.oci.image.layer.v1.tar+encrypted', 'unsupported'],
    // Suffixes are sorted before the last one is taken: encrypted < gzip.
    ['application/vnd.oci.image.layer.v1.tar+gzip+encrypted', 'gzip'],
    ['application/vnd.oci.image.layer.v1.tar+encrypted+gzip', 'gzip'],
    ['application/vnd.oci.image.layer.v1.tar+zstd+gzip', 'zstd'],
    ['application/vnd.oci.image.layer.v1.tar+foo', 'unsupported'],
    // Wrapped Docker types are "" in containerd: skipped.
    ['application/vnd.docker.image.rootfs.diff.tar.gzip+encrypted', 'unsupported'],
    ['application/vnd.docker.image.rootfs.diff.tar+gzip', 'unsupported'],
    ['application/vnd.docker.image.rootfs.diff.tar.zstd+x', 'unsupported'],
  ];
  for (const [mediaType, expected] of table) {
    test(`${mediaType} → ${expected}`, () => {
      assert.equal(isLayer(mediaType), true);
      assert.equal(layerCompression(mediaType), expected);
    });
  }

  test('an OCI layer type with an unrecognised base is a layer whose compression is an error', () => {
    for (const mediaType of [
      'application/vnd.oci.image.layer.v1.foo',
      'application/vnd.oci.image.layer.',
      'application/vnd.oci.image.layer.v2.tar+gzip',
    ]) {
      assert.equal(isLayer(mediaType), true);
      assert.throws(() => layerCompression(mediaType), MediaTypeError);
    }
  });

  test('non-layer types', () => {
    for (const mediaType of [
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.oci.image.config.v1+json',
      'application/octet-stream',
      'application/vnd.amazon.soci.prefetch.v1+json',
      'application/vnd.in-toto+json',
      'application/vnd.docker.image.rootfs.diff.tar.gz',
      'application/vnd.oci.image.layerx',
      '',
    ]) {
      assert.equal(isLayer(mediaType), false, mediaType);
    }
    assert.throws(() => layerCompression('application/octet-stream'), /unrecognised layer media type "application\/octet-stream"/);
  });
});

describe('manifest and index types', () => {
  test('isManifest', () => {
    assert.equal(isManifest('application/vnd.oci.image.manifest.v1+json'), true);
    assert.equal(isManifest('application/vnd.docker.distribution.manifest.v2+json'), true);
    assert.equal(isManifest('application/vnd.docker.distribution.manifest.v1+prettyjws'), false);
    assert.equal(isManifest('application/vnd.oci.image.index.v1+json'), false);
  });
  test('isIndex', () => {
    assert.equal(isIndex('application/vnd.oci.image.index.v1+json'), true);
    assert.equal(isIndex('application/vnd.docker.distribution.manifest.list.v2+json'), true);
    assert.equal(isIndex('application/vnd.oci.image.manifest.v1+json'), false);
  });
});
