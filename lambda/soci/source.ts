// Reads the source image: the manifest or index a reference names, every child manifest of an index (the
// v2 convert rewrites them all), and the platform images to index. Recognises what must not be indexed:
// our own output (SOCI v2 descriptors or index-digest annotations) and artifacts that are not images.
import { isDigest } from '../oci/digest.ts';
import { goUnmarshal, type Index, type Manifest, parseIndex, parseManifest, platformSchema } from '../oci/go-json.ts';
import {
  ANNOTATION_REF_NAME,
  ANNOTATION_SOCI_INDEX_DIGEST,
  isIndex,
  isManifest,
  MEDIA_TYPE_DOCKER_CONFIG,
  MEDIA_TYPE_OCI_CONFIG,
  SOCI_INDEX_ARTIFACT_TYPE_V1,
  SOCI_INDEX_ARTIFACT_TYPE_V2,
} from '../oci/media-types.ts';
import { checkDescriptorSize, type Descriptor, MAX_CONFIG_BYTES, type Platform, type Target } from '../oci/target.ts';
import { isNotFound } from './errors.ts';
import { formatPlatform, normalizePlatform, parseSpecifier, platformMatches } from './platform.ts';
import { SociError } from './types.ts';

/** BuildKit marks attestation manifests inside an image index with this annotation. */
const ANNOTATION_DOCKER_REFERENCE_TYPE = 'vnd.docker.reference.type';

export interface ChildManifest {
  bytes: Uint8Array;
  manifest: Manifest;
}

/** One platform's image manifest, to be indexed. */
export interface PlatformImage {
  /** As written in the source index (or, for a single manifest, normalized from its config). */
  platform: Platform;
  /** What the SOCI index descriptor records, as upstream: the platform as asked with `--platform`, else `platform`. */
  indexPlatform: Platform;
  name: string;
  /** The manifest's descriptor (for a single manifest, the resolved root with `platform` added). */
  descriptor: Descriptor;
  manifest: Manifest;
}

export type SourceImage = {
  reference: string;
  tag?: string;
  root: Descriptor;
  rootBytes: Uint8Array;
  /** The images to index, in index order, one per platform. */
  images: PlatformImage[];
} & (
  | { kind: 'manifest' }
  /** `index` as Go decodes it; `children` holds every manifest it lists that could be read, by digest. */
  | { kind: 'index'; index: Index; children: Map<string, ChildManifest> }
);

export type SourceVerdict =
  | { kind: 'image'; source: SourceImage }
  | { kind: 'own-output'; root: Descriptor; tag?: string; reason: string }
  | { kind: 'not-an-image'; root: Descriptor; tag?: string; reason: string };

const IMAGE_CONFIG_TYPES = new Set([MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_DOCKER_CONFIG]);
const SOCI_CONFIG_TYPES = new Set([SOCI_INDEX_ARTIFACT_TYPE_V1, SOCI_INDEX_ARTIFACT_TYPE_V2]);

/**
 * Splits a target-relative reference into what to resolve and the tag it names: `tag`, `sha256:…`,
 * `tag@sha256:…`, or '' (a layout's only manifest, whose ref name is then the tag).
 */
function splitReference(reference: string): { resolve: string; tag?: string } {
  const at = reference.indexOf('@');
  if (at >= 0) return { resolve: reference.slice(at + 1), ...(at > 0 && { tag: reference.slice(0, at) }) };
  if (isDigest(reference) || reference === '') return { resolve: reference };
  return { resolve: reference, tag: reference };
}

function parseWith<T>(parse: (bytes: Uint8Array) => T, bytes: Uint8Array, what: string): T {
  try {
    return parse(bytes);
  } catch (err) {
    throw new SociError('permanent', `${what}: ${(err as Error).message}`, { cause: err });
  }
}

/** Why a manifest is not an image to index, or undefined when it is one. */
function notAnImage(manifest: Manifest): string | undefined {
  const configType = manifest.config.mediaType;
  if (SOCI_CONFIG_TYPES.has(configType)) return `a SOCI index artifact (config media type ${configType})`;
  if (manifest.artifactType) return `an artifact of type ${manifest.artifactType}`;
  if (!IMAGE_CONFIG_TYPES.has(configType)) return `an artifact whose config media type is ${JSON.stringify(configType)}`;
  return undefined;
}

async function configPlatform(target: Target, manifest: Manifest, signal?: AbortSignal): Promise<Platform> {
  checkDescriptorSize(manifest.config, `${target.description}: image config`, MAX_CONFIG_BYTES, 'max-config-bytes');
  const bytes = await target.fetchBytes(manifest.config, { signal });
  const platform = parseWith((b) => goUnmarshal(platformSchema, b) as Platform, bytes, `image config ${manifest.config.digest}`);
  return normalizePlatform(platform);
}

function wanted(platforms: 'all' | string[]): Platform[] | undefined {
  return platforms === 'all' ? undefined : platforms.map(parseSpecifier);
}

/**
 * Without `filter`, every platform in index order (the first image of each). With it, as upstream's
 * convert: the requested platforms in the order given (duplicates dropped), each taking the first image
 * that matches it and recording the platform as asked. A requested platform the image lacks is skipped
 * (one Lambda configuration serves images with different platform sets); none matching is an error.
 */
function choosePlatforms(candidates: PlatformImage[], filter: Platform[] | undefined, what: string): PlatformImage[] {
  const chosen: PlatformImage[] = [];
  if (!filter) {
    for (const image of candidates) if (!chosen.some((c) => platformMatches(c.platform, image.platform))) chosen.push(image);
    return chosen;
  }
  const asked: Platform[] = [];
  for (const platform of filter) if (!asked.some((a) => platformMatches(a, platform))) asked.push(platform);
  for (const platform of asked) {
    const image = candidates.find((c) => platformMatches(platform, c.platform));
    if (image) chosen.push({ ...image, indexPlatform: platform });
  }
  if (chosen.length === 0) {
    const available = candidates.map((c) => c.name).join(', ') || 'none';
    throw new SociError('permanent', `${what}: no image for platform ${filter.map(formatPlatform).join(', ')} (it has ${available})`);
  }
  return chosen;
}

/** Resolves `reference` in `target` and reads what the build needs; never pushes. */
export async function readSource(
  target: Target,
  reference: string,
  platforms: 'all' | string[],
  signal?: AbortSignal,
): Promise<SourceVerdict> {
  const filter = wanted(platforms);
  const { resolve, tag: givenTag } = splitReference(reference);
  const root = await target.resolve(resolve);
  const tag = givenTag ?? root.annotations?.[ANNOTATION_REF_NAME];
  const what = `${target.description}${reference ? ` ${reference}` : ''}`;
  const rootBytes = await target.fetchBytes(root, { signal });
  const base = { reference, ...(tag !== undefined && { tag }), root, rootBytes };

  if (isManifest(root.mediaType)) {
    const manifest = parseWith(parseManifest, rootBytes, `${what}: manifest ${root.digest}`);
    const artifact = notAnImage(manifest);
    if (artifact) return { kind: 'not-an-image', root, tag, reason: `${what} is ${artifact}` };
    if (manifest.annotations?.[ANNOTATION_SOCI_INDEX_DIGEST]) {
      return {
        kind: 'own-output',
        root,
        tag,
        reason: `${what} is an image manifest already bound to SOCI index ${manifest.annotations[ANNOTATION_SOCI_INDEX_DIGEST]}`,
      };
    }
    const platform = await configPlatform(target, manifest, signal);
    const image: PlatformImage = {
      platform,
      indexPlatform: platform,
      name: formatPlatform(platform),
      descriptor: { ...root, platform },
      manifest,
    };
    return { kind: 'image', source: { ...base, kind: 'manifest', images: choosePlatforms([image], filter, what) } };
  }
  if (!isIndex(root.mediaType)) {
    return { kind: 'not-an-image', root, tag, reason: `${what} is a ${root.mediaType}, neither an image manifest nor an index` };
  }

  const index = parseWith(parseIndex, rootBytes, `${what}: index ${root.digest}`);
  const entries = index.manifests ?? [];
  const soci = entries.find((d) => d.artifactType === SOCI_INDEX_ARTIFACT_TYPE_V2 || d.annotations?.[ANNOTATION_SOCI_INDEX_DIGEST]);
  if (soci)
    return { kind: 'own-output', root, tag, reason: `${what} is an image index that already carries SOCI v2 content (${soci.digest})` };

  const children = new Map<string, ChildManifest>();
  const candidates: PlatformImage[] = [];
  for (const entry of entries) {
    if (!isManifest(entry.mediaType) || children.has(entry.digest)) continue;
    let bytes: Uint8Array;
    try {
      bytes = await target.fetchBytes(entry, { signal });
    } catch (err) {
      // Like upstream's convert, a child that is not there is left as it is in the index.
      if (isNotFound(err)) continue;
      throw err;
    }
    const manifest = parseWith(parseManifest, bytes, `${what}: manifest ${entry.digest}`);
    children.set(entry.digest, { bytes, manifest });
    if (manifest.annotations?.[ANNOTATION_SOCI_INDEX_DIGEST]) {
      return { kind: 'own-output', root, tag, reason: `${what} lists image manifest ${entry.digest}, already bound to a SOCI index` };
    }
    if (entry.annotations?.[ANNOTATION_DOCKER_REFERENCE_TYPE] !== undefined || entry.artifactType || notAnImage(manifest)) continue;
    if (entry.platform?.os === 'unknown' || entry.platform?.architecture === 'unknown') continue;
    const platform = entry.platform ?? (await configPlatform(target, manifest, signal));
    candidates.push({ platform, indexPlatform: platform, name: formatPlatform(platform), descriptor: entry, manifest });
  }
  if (candidates.length === 0) return { kind: 'not-an-image', root, tag, reason: `${what} is an index that lists no image manifest` };
  return { kind: 'image', source: { ...base, kind: 'index', index, children, images: choosePlatforms(candidates, filter, what) } };
}
