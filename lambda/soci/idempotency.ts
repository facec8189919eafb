// Recognises output that already exists for this exact source and these settings, from manifests alone
// (no layer is read): v2 through the output tag, v1 through the referrers of each image manifest.
//
// A SOCI index matches only when it is, byte for byte, the index this build would write given the zTOCs it
// lists: the index is rebuilt from those zTOCs and the options (version, build tool, span size, the layers
// the selection picks, the disable-xattrs verdict of each zTOC under the xattr optimisation, the prefetch
// artifacts of the requested paths) and its digest compared. The zTOCs are read (they are small; layers
// never are) only when the xattr optimisation or prefetch paths ask for what is inside them. For v2 the
// output index must in addition be byte-for-byte what converting the source with those SOCI indexes gives,
// which proves its image manifests are the source's, converted.

import { errorKind } from '../oci/errors.ts';
import { type Manifest, parseIndex, parseManifest } from '../oci/go-json.ts';
import {
  ANNOTATION_BUILD_TOOL_IDENTIFIER,
  ANNOTATION_DISABLE_XATTRS,
  ANNOTATION_IMAGE_LAYER_DIGEST,
  ANNOTATION_IMAGE_LAYER_MEDIA_TYPE,
  ANNOTATION_SPAN_SIZE,
  isIndex,
  SOCI_INDEX_ARTIFACT_TYPE_V1,
  SOCI_INDEX_ARTIFACT_TYPE_V2,
  SOCI_PREFETCH_MEDIA_TYPE,
  SOCI_ZTOC_MEDIA_TYPE,
} from '../oci/media-types.ts';
import type { Descriptor, Target } from '../oci/target.ts';
import { parseZtoc } from '../ztoc/codec.ts';
import { type Binding, convertImage } from './convert.ts';
import { isMissingOrBroken, isNotFound } from './errors.ts';
import { artifactTypeOf, sociIndex, ztocDescriptor } from './index-manifest.ts';
import { hasNoXattrs } from './layer-index.ts';
import { platformMatches } from './platform.ts';
import { findPrefetchSpans, type PrefetchSpan, prefetchArtifacts } from './prefetch.ts';
import type { PlatformImage, SourceImage } from './source.ts';
import type { IndexVersion } from './types.ts';

export interface Expectation {
  version: IndexVersion;
  spanSize: number;
  buildToolId: string;
  xattr: boolean;
  /** Cleaned prefetch paths, in the order asked. */
  prefetchPaths: string[];
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

/** Cheap checks on the manifest alone: a SOCI index of this version and build tool for exactly `layers`. */
function plausible(manifest: Manifest, expect: Expectation, layers: Set<string>, subject?: string): boolean {
  if (manifest.config.mediaType !== artifactTypeOf(expect.version)) return false;
  if (manifest.annotations?.[ANNOTATION_BUILD_TOOL_IDENTIFIER] !== expect.buildToolId) return false;
  if (subject !== undefined && manifest.subject?.digest !== subject) return false;
  const blobs = manifest.layers ?? [];
  const ztocs = blobs.filter((d) => d.mediaType === SOCI_ZTOC_MEDIA_TYPE);
  if (ztocs.some((d) => d.annotations?.[ANNOTATION_SPAN_SIZE] !== String(expect.spanSize))) return false;
  if (!expect.xattr && ztocs.some((d) => d.annotations?.[ANNOTATION_DISABLE_XATTRS] !== undefined)) return false;
  if (expect.prefetchPaths.length === 0 && blobs.some((d) => d.mediaType === SOCI_PREFETCH_MEDIA_TYPE)) return false;
  return sameSet(
    layers,
    ztocs.map((d) => d.annotations?.[ANNOTATION_IMAGE_LAYER_DIGEST] ?? ''),
  );
}

/** What the build needs from a zTOC beyond its digest: the xattr verdict and the prefetch matches. */
interface ZtocFacts {
  noXattrs: boolean;
  prefetch: Map<string, PrefetchSpan>;
}

async function readZtocFacts(target: Target, desc: Descriptor, expect: Expectation): Promise<ZtocFacts | undefined> {
  let ztoc;
  try {
    ztoc = parseZtoc(await target.fetchBytes({ mediaType: desc.mediaType, digest: desc.digest, size: desc.size }));
  } catch (err) {
    if (isMissingOrBroken(err) || errorKind(err) === 'limit') return undefined;
    throw err;
  }
  if (ztoc.buildToolIdentifier !== expect.buildToolId) return undefined;
  return { noXattrs: hasNoXattrs(ztoc.toc.length, (i) => ztoc.toc[i]!), prefetch: findPrefetchSpans(ztoc, expect.prefetchPaths) };
}

/**
 * True when `manifest` (whose digest is `digest`) is exactly the SOCI index this build would write for
 * `image` given the zTOCs it lists.
 */
async function matchesSettings(
  target: Target,
  digest: string,
  manifest: Manifest,
  expect: Expectation,
  image: PlatformImage,
  v1: boolean,
): Promise<boolean> {
  const layers = expect.indexedLayers.get(image.descriptor.digest) ?? new Set<string>();
  if (!plausible(manifest, expect, layers, v1 ? image.descriptor.digest : undefined)) return false;
  // By layer digest and media type: one blob declared with two media types has a zTOC for each that could
  // be built (a plain tar declared as gzip cannot).
  const key = (digest: string | undefined, mediaType: string | undefined) => `${digest} ${mediaType}`;
  const existing = new Map<string, Descriptor>();
  for (const d of manifest.layers ?? []) {
    if (d.mediaType === SOCI_ZTOC_MEDIA_TYPE)
      existing.set(key(d.annotations?.[ANNOTATION_IMAGE_LAYER_DIGEST], d.annotations?.[ANNOTATION_IMAGE_LAYER_MEDIA_TYPE]), d);
  }
  const facts = new Map<string, ZtocFacts>();
  if (expect.xattr || expect.prefetchPaths.length > 0) {
    for (const [k, ztoc] of existing) {
      const read = await readZtocFacts(target, ztoc, expect);
      if (!read) return false;
      facts.set(k, read);
    }
  }
  const imageLayers = image.manifest.layers ?? [];
  const ztocs = imageLayers.flatMap((layer) => {
    const k = key(layer.digest, layer.mediaType);
    const ztoc = layers.has(layer.digest) ? existing.get(k) : undefined;
    return ztoc ? [ztocDescriptor(layer, ztoc, expect.spanSize, expect.xattr && facts.get(k)!.noXattrs)] : [];
  });
  // As the build: a layer's prefetch matches are those of the last zTOC built for its digest.
  const byDigest = new Map<string, ZtocFacts>();
  for (const layer of imageLayers) {
    const found = layers.has(layer.digest) ? facts.get(key(layer.digest, layer.mediaType)) : undefined;
    if (found) byDigest.set(layer.digest, found);
  }
  const prefetch =
    expect.prefetchPaths.length === 0
      ? []
      : prefetchArtifacts(imageLayers, (layer) => byDigest.get(layer.digest)?.prefetch, expect.prefetchPaths);
  const rebuilt = sociIndex(
    expect.version,
    [...ztocs, ...prefetch.map((p) => p.descriptor)],
    expect.buildToolId,
    v1 ? image.descriptor : undefined,
  );
  return rebuilt.descriptor.digest === digest;
}

async function readManifest(target: Target, desc: Descriptor): Promise<Manifest | undefined> {
  try {
    return parseManifest(await target.fetchBytes(desc));
  } catch (err) {
    // Something else (or something broken) under our name: not our output, so build again.
    if (isMissingOrBroken(err)) return undefined;
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
export async function findV2Output(
  target: Target,
  tags: readonly string[],
  source: SourceImage,
  expect: Expectation,
): Promise<ExistingOutput | undefined> {
  if (tags.length === 0) return undefined;
  const resolved = await Promise.all(tags.map((tag) => resolveTag(target, tag)));
  const output = resolved[0];
  if (!output || !isIndex(output.mediaType) || resolved.some((d) => d?.digest !== output.digest)) return undefined;
  let entries: Descriptor[];
  try {
    entries = parseIndex(await target.fetchBytes(output)).manifests ?? [];
  } catch (err) {
    if (errorKind(err) === 'corrupt') return undefined;
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
    if (!manifest || !(await matchesSettings(target, candidate.digest, manifest, expect, image, false))) return undefined;
    const index: Descriptor = {
      mediaType: candidate.mediaType,
      digest: candidate.digest,
      size: candidate.size,
      artifactType: SOCI_INDEX_ARTIFACT_TYPE_V2,
    };
    // The platform as the build records it (as asked with --platform), so the conversion below is the build's.
    bindings.push({ manifestDigest: image.descriptor.digest, platform: image.indexPlatform, index });
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
      if (manifest && (await matchesSettings(target, referrer.digest, manifest, expect, image, true))) {
        found = {
          image,
          manifest,
          index: { mediaType: referrer.mediaType, digest: referrer.digest, size: referrer.size, artifactType: SOCI_INDEX_ARTIFACT_TYPE_V1 },
        };
        break;
      }
    }
    if (!found) return undefined;
    indexes.push(found);
  }
  return indexes.length === 0 ? undefined : { output: indexes[0]!.index, indexes };
}
