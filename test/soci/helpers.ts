// Test helpers for the soci core: walk an output and check that everything it references exists, and
// assemble small images (from golden layers or given bytes) in OCI layouts through the Target API.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { OciLayoutTarget } from '../../lambda/layout/oci-layout.ts';
import { descriptorFor } from '../../lambda/oci/digest.ts';
import { marshalIndex, marshalManifest, parseIndex, parseManifest } from '../../lambda/oci/go-json.ts';
import { isIndex, isManifest, MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST } from '../../lambda/oci/media-types.ts';
import type { Descriptor, Platform, Target } from '../../lambda/oci/target.ts';
import { goldenLayer } from '../support/golden.ts';

/**
 * Asserts that `root` and everything it references (index children, configs, layers) exist in `target`;
 * returns every digest seen.
 */
export async function assertComplete(target: Target, root: Descriptor, seen = new Set<string>()): Promise<Set<string>> {
  if (seen.has(root.digest)) return seen;
  seen.add(root.digest);
  assert.ok(await target.exists(root), `${root.mediaType} ${root.digest} exists`);
  if (isIndex(root.mediaType)) {
    for (const child of parseIndex(await target.fetchBytes(root)).manifests ?? []) await assertComplete(target, child, seen);
  } else if (isManifest(root.mediaType)) {
    const manifest = parseManifest(await target.fetchBytes(root));
    for (const blob of [manifest.config, ...(manifest.layers ?? [])]) {
      seen.add(blob.digest);
      assert.ok(await target.exists(blob), `blob ${blob.digest} of ${root.digest} exists`);
    }
  }
  return seen;
}

export async function readJson(target: Target, desc: Descriptor): Promise<any> {
  return JSON.parse(Buffer.from(await target.fetchBytes(desc)).toString('utf8'));
}

export interface LayerInput {
  mediaType: string;
  bytes: Uint8Array;
}

/** A golden layer file with the media type to declare for it. */
export async function goldenLayerInput(name: string, mediaType: string): Promise<LayerInput> {
  return { mediaType, bytes: await readFile(goldenLayer(name).path) };
}

/** Pushes an image (config from `platform`) into `target` and returns its manifest descriptor. */
export async function pushImage(
  target: Target,
  layers: LayerInput[],
  platform: Platform = { os: 'linux', architecture: 'amd64' },
  configMediaType = MEDIA_TYPE_OCI_CONFIG,
): Promise<Descriptor> {
  const layerDescs: Descriptor[] = [];
  for (const layer of layers) {
    const desc = descriptorFor(layer.mediaType, layer.bytes);
    await target.push(desc, layer.bytes);
    layerDescs.push(desc);
  }
  const configBytes = Buffer.from(JSON.stringify({ ...platform, rootfs: { type: 'layers', diff_ids: [] } }));
  const config = descriptorFor(configMediaType, configBytes);
  await target.push(config, configBytes);
  const bytes = marshalManifest({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_MANIFEST, config, layers: layerDescs });
  const manifest = descriptorFor(MEDIA_TYPE_OCI_MANIFEST, bytes);
  await target.push(manifest, bytes);
  return manifest;
}

/** Pushes an OCI index over `entries` (manifest descriptors with platforms, or any descriptor). */
export async function pushIndex(target: Target, entries: Descriptor[]): Promise<Descriptor> {
  const bytes = marshalIndex({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: entries });
  const desc = descriptorFor(MEDIA_TYPE_OCI_INDEX, bytes);
  await target.push(desc, bytes);
  return desc;
}

export async function newLayout(dir: string): Promise<OciLayoutTarget> {
  return OciLayoutTarget.open(dir, { create: true });
}
