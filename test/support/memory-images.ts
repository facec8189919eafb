// Small gzip images pushed into a Target in memory, for the unit-tier tests of builds with a zTOC cache
// (test/memory/): no registry, no external binary.
import { gzipSync } from 'node:zlib';
import { descriptorFor } from '../../lambda/oci/digest.ts';
import { marshalManifest } from '../../lambda/oci/go-json.ts';
import { MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_LAYER_GZIP, MEDIA_TYPE_OCI_MANIFEST } from '../../lambda/oci/media-types.ts';
import type { Descriptor, Target } from '../../lambda/oci/target.ts';
import { tarBytes } from './bytes.ts';

/** A gzip tar layer of one 100 kB file `name` (its bytes, and so the layer digest, follow from the name). */
export async function gzipLayer(name: string): Promise<Uint8Array> {
  const mtime = new Date('2024-01-01T00:00:00Z');
  return gzipSync(await tarBytes((archive) => archive.entry({ name, mode: 0o644, mtime }, Buffer.alloc(100_000, name))));
}

/** Pushes an amd64 image over `layers` and tags it `tag`; returns the layer descriptors. */
export async function pushImage(target: Target, tag: string, layers: Uint8Array[]): Promise<Descriptor[]> {
  const descriptors = layers.map((bytes) => descriptorFor(MEDIA_TYPE_OCI_LAYER_GZIP, bytes));
  for (const [i, d] of descriptors.entries()) await target.push(d, layers[i]!);
  const configBytes = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const config = descriptorFor(MEDIA_TYPE_OCI_CONFIG, configBytes);
  await target.push(config, configBytes);
  const manifestBytes = marshalManifest({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_MANIFEST, config, layers: descriptors });
  const manifest = descriptorFor(MEDIA_TYPE_OCI_MANIFEST, manifestBytes);
  await target.push(manifest, manifestBytes);
  await target.tag(manifest, tag);
  return descriptors;
}
