// Recognises output that already exists for this exact source and these settings, from manifests alone
// (no layer is read): v2 through the output tag, v1 through the referrers of each image manifest.
//
// A SOCI index matches when its type, build tool and zTOC span sizes are ours, the layers it has zTOCs for
// are exactly those the layer selection picks (by size and media type), and the optional annotations agree
// with the options (no disable-xattrs without the xattr optimisation, no prefetch artifacts without
// prefetch paths). For v2 the output index must in addition be byte-for-byte what converting the source
// with those SOCI indexes gives, which proves its image manifests are the source's, converted.
import { parseIndex, parseManifest, type Manifest } from '../oci/go-json.ts';
import {
  ANNOTATION_BUILD_TOOL_IDENTIFIER,
  ANNOTATION_DISABLE_XATTRS,
  ANNOTATION_IMAGE_LAYER_DIGEST,
  ANNOTATION_SPAN_SIZE,
  SOCI_INDEX_ARTIFACT_TYPE_V1,
  SOCI_INDEX_ARTIFACT_TYPE_V2,
  SOCI_PREFETCH_MEDIA_TYPE,
  SOCI_ZTOC_MEDIA_TYPE,
  isIndex,
} from '../oci/media-types.ts';
import type { Descriptor, Target } from '../oci/target.ts';
import { convertImage, type Binding } from './convert.ts';
import { isNotFound } from './errors.ts';
import { artifactTypeOf } from './index-manifest.ts';
import { platformMatches } from './platform.ts';
import type { PlatformImage, SourceImage } from './source.ts';
import type { IndexVersion } from './types.ts';

export interface Expectation {
  version: IndexVersion;
  spanSize: number;
  buildToolId: string;
  xattr: boolean;
  prefetch: boolean;
  /** Digests of the layers the selection indexes, per image manifest digest. */
  indexedLayers: Map<string, Set<string>>;
}

/** An existing SOCI index for one image. */
export interface ExistingIndex {
  image: PlatformImage;
  index: Descriptor;
  manifest: Manifest;
  convertedManifestDigest?: string;
}

export interface ExistingOutput {
  /** v2: the SOCI-enabled image index; v1: the first image's SOCI index. */
  output: Descriptor;
  indexes: ExistingIndex[];
}

/** Set equality (a layer listed twice in a manifest gets two zTOC descriptors, as upstream does). */
function sameSet(a: Set<string>, b: readonly string[]): boolean {
  const other = new Set(b);
  return a.size === other.size && [...other].every((d) => a.has(d));
}

/** True when `manifest` is a SOCI index built with these settings for exactly `layers`. */
function matchesSettings(manifest: Manifest, expect: Expectation, layers: Set<string>, subject?: string): boolean {
  if (manifest.config.mediaType !== artifactTypeOf(expect.version)) return false;
  if (manifest.annotations?.[ANNOTATION_BUILD_TOOL_IDENTIFIER] !== expect.buildToolId) return false;
  if (subject !== undefined && manifest.subject?.digest !== subject) return false;
  const blobs = manifest.layers ?? [];
  const ztocs = blobs.filter((d) => d.mediaType === SOCI_ZTOC_MEDIA_TYPE);
  if (ztocs.some((d) => d.annotations?.[ANNOTATION_SPAN_SIZE] !== String(expect.spanSize))) return false;
  if (!expect.xattr && ztocs.some((d) => d.annotations?.[ANNOTATION_DISABLE_XATTRS] !== undefined)) return false;
  if (!expect.prefetch && blobs.some((d) => d.mediaType === SOCI_PREFETCH_MEDIA_TYPE)) return false;
  return sameSet(layers, ztocs.map((d) => d.annotations?.[ANNOTATION_IMAGE_LAYER_DIGEST] ?? ''));
}

async function readManifest(target: Target, desc: Descriptor): Promise<Manifest | undefined> {
  try {
    return parseManifest(await target.fetchBytes(desc));
  } catch (err) {
    // Something else (or something broken) under our name: not our output, so build again.
    if (isNotFound(err) || ['GoJsonError', 'DigestMismatchError'].includes((err as Error).name)) return undefined;
    throw err;
  }
}

async function resolveTag(target: Target, tag: string): Promise<Descriptor | undefined> {
  try {
    return await target.resolve(tag);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** The v2 output every tag in `tags` already points to, if it is the one this build would make. */
export async function findV2Output(target: Target, tags: readonly string[], source: SourceImage, expect: Expectation): Promise<ExistingOutput | undefined> {
  if (tags.length === 0) return undefined;
  const resolved = await Promise.all(tags.map((tag) => resolveTag(target, tag)));
  const output = resolved[0];
  if (!output || !isIndex(output.mediaType) || resolved.some((d) => d?.digest !== output.digest)) return undefined;
  let entries: Descriptor[];
  try {
    entries = parseIndex(await target.fetchBytes(output)).manifests ?? [];
  } catch (err) {
    if ((err as Error).name === 'GoJsonError') return undefined;
    throw err;
  }
  const sociDescriptors = entries.filter((d) => d.artifactType === SOCI_INDEX_ARTIFACT_TYPE_V2);
  const bindings: Binding[] = [];
  const indexes: ExistingIndex[] = [];
  for (const image of source.images) {
    const layers = expect.indexedLayers.get(image.descriptor.digest) ?? new Set();
    if (layers.size === 0) continue;
    const candidate = sociDescriptors.find((d) => d.platform !== undefined && platformMatches(image.platform, d.platform));
    if (!candidate) return undefined;
    const manifest = await readManifest(target, candidate);
    if (!manifest || !matchesSettings(manifest, expect, layers)) return undefined;
    const index: Descriptor = { mediaType: candidate.mediaType, digest: candidate.digest, size: candidate.size, artifactType: SOCI_INDEX_ARTIFACT_TYPE_V2 };
    bindings.push({ manifestDigest: image.descriptor.digest, platform: image.platform, index });
    indexes.push({ image, index, manifest });
  }
  if (bindings.length === 0 || bindings.length !== sociDescriptors.length) return undefined;
  const converted = convertImage(source, bindings);
  if (converted.index.descriptor.digest !== output.digest) return undefined;
  for (const existing of indexes) existing.convertedManifestDigest = converted.convertedDigests.get(existing.image.descriptor.digest);
  return { output: converted.index.descriptor, indexes };
}

/** The v1 SOCI indexes (one per image that has layers to index) already attached to the images. */
export async function findV1Output(target: Target, source: SourceImage, expect: Expectation): Promise<ExistingOutput | undefined> {
  const indexes: ExistingIndex[] = [];
  for (const image of source.images) {
    const layers = expect.indexedLayers.get(image.descriptor.digest) ?? new Set();
    if (layers.size === 0) continue;
    let found: ExistingIndex | undefined;
    for (const referrer of await target.referrers(image.descriptor, SOCI_INDEX_ARTIFACT_TYPE_V1)) {
      const manifest = await readManifest(target, referrer);
      if (manifest && matchesSettings(manifest, expect, layers, image.descriptor.digest)) {
        found = { image, manifest, index: { mediaType: referrer.mediaType, digest: referrer.digest, size: referrer.size, artifactType: SOCI_INDEX_ARTIFACT_TYPE_V1 } };
        break;
      }
    }
    if (!found) return undefined;
    indexes.push(found);
  }
  return indexes.length === 0 ? undefined : { output: indexes[0]!.index, indexes };
}
