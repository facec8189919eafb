// Media types, SOCI constants and layer classification (docs/format.md §4.3, §5). The classification
// mirrors containerd v2.2 `images.IsLayerType` / `DiffCompression`, which soci-snapshotter uses to
// decide which layers get a zTOC.

import { MediaTypeError } from './errors.ts';
import { compareGoStrings } from './go-strings.ts';

export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const MEDIA_TYPE_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const MEDIA_TYPE_OCI_EMPTY = 'application/vnd.oci.empty.v1+json';
export const MEDIA_TYPE_OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar';
export const MEDIA_TYPE_OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
export const MEDIA_TYPE_OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
export const MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE = 'application/vnd.oci.image.layer.nondistributable.v1.tar';

export const MEDIA_TYPE_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
export const MEDIA_TYPE_DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const MEDIA_TYPE_DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
export const MEDIA_TYPE_DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar';
export const MEDIA_TYPE_DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
export const MEDIA_TYPE_DOCKER_LAYER_ZSTD = 'application/vnd.docker.image.rootfs.diff.tar.zstd';
export const MEDIA_TYPE_DOCKER_LAYER_FOREIGN = 'application/vnd.docker.image.rootfs.foreign.diff.tar';
export const MEDIA_TYPE_DOCKER_LAYER_FOREIGN_GZIP = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';

/** Artifact type (and config media type) of a v1 SOCI index, found through the referrers API. */
export const SOCI_INDEX_ARTIFACT_TYPE_V1 = 'application/vnd.amazon.soci.index.v1+json';
/** Artifact type (and config media type) of a v2 SOCI index, bound by an image-manifest annotation. */
export const SOCI_INDEX_ARTIFACT_TYPE_V2 = 'application/vnd.amazon.soci.index.v2+json';
/** Media type of a zTOC descriptor in a SOCI index. */
export const SOCI_ZTOC_MEDIA_TYPE = 'application/octet-stream';
export const SOCI_PREFETCH_MEDIA_TYPE = 'application/vnd.amazon.soci.prefetch.v1+json';
export const SOCI_PREFETCH_VERSION = '1.0';

/** The SOCI index config blob is the two bytes `{}`. */
export const EMPTY_JSON_CONFIG = Object.freeze({
  content: '{}',
  digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  size: 2,
});

export const ANNOTATION_IMAGE_LAYER_DIGEST = 'com.amazon.soci.image-layer-digest';
export const ANNOTATION_IMAGE_LAYER_MEDIA_TYPE = 'com.amazon.soci.image-layer-mediaType';
export const ANNOTATION_SPAN_SIZE = 'com.amazon.soci.span-size';
export const ANNOTATION_DISABLE_XATTRS = 'com.amazon.soci.disable-xattrs';
export const ANNOTATION_BUILD_TOOL_IDENTIFIER = 'com.amazon.soci.build-tool-identifier';
/** On the image manifest (v2): the digest of its SOCI index. */
export const ANNOTATION_SOCI_INDEX_DIGEST = 'com.amazon.soci.index-digest';
/** On a SOCI index descriptor inside an OCI index (v2): the digest of the image manifest it serves. */
export const ANNOTATION_IMAGE_MANIFEST_DIGEST = 'com.amazon.soci.image-manifest-digest';
/** OCI image-layout tag annotation on index.json entries. */
export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';

/** An image manifest (OCI or Docker schema 2), as containerd `IsManifestType`. */
export function isManifest(mediaType: string): boolean {
  return mediaType === MEDIA_TYPE_OCI_MANIFEST || mediaType === MEDIA_TYPE_DOCKER_MANIFEST;
}

/** An image index or Docker manifest list, as containerd `IsIndexType`. */
export function isIndex(mediaType: string): boolean {
  return mediaType === MEDIA_TYPE_OCI_INDEX || mediaType === MEDIA_TYPE_DOCKER_MANIFEST_LIST;
}

/** containerd `parseMediaTypes`: base before the first '+', suffixes sorted by byte order. */
function splitMediaType(mediaType: string): { base: string; suffixes: string[] } {
  const plus = mediaType.indexOf('+');
  if (plus < 0) return { base: mediaType, suffixes: [] };
  // containerd splits into at most 50 parts; the 50th keeps any further '+'.
  const parts = mediaType.slice(plus + 1).split('+');
  const suffixes = parts.length > 50 ? [...parts.slice(0, 49), parts.slice(49).join('+')] : parts;
  return { base: mediaType.slice(0, plus), suffixes: suffixes.sort(compareGoStrings) };
}

const DOCKER_LAYER_BASES = new Set([
  MEDIA_TYPE_DOCKER_LAYER,
  MEDIA_TYPE_DOCKER_LAYER_GZIP,
  MEDIA_TYPE_DOCKER_LAYER_FOREIGN,
  MEDIA_TYPE_DOCKER_LAYER_FOREIGN_GZIP,
  MEDIA_TYPE_DOCKER_LAYER_ZSTD,
]);

/** containerd `IsLayerType`: any `application/vnd.oci.image.layer.` type, or a Docker rootfs type. */
export function isLayer(mediaType: string): boolean {
  if (mediaType.startsWith('application/vnd.oci.image.layer.')) return true;
  return DOCKER_LAYER_BASES.has(splitMediaType(mediaType).base);
}

/**
 * How soci-snapshotter treats a layer of this media type (spec §4.3 step 4):
 * - `gzip`: zTOC with gzip checkpoints;
 * - `uncompressed`: exactly `application/vnd.oci.image.layer.v1.tar`;
 * - `unknown`: Docker `rootfs.diff.tar` (containerd's "may be compressed"); soci indexes it as a tar;
 * - `zstd`: not indexable, skipped;
 * - `unsupported`: a recognised layer base type that soci skips (wrapped Docker types, OCI variants without
 *   a gzip/zstd last suffix such as non-distributable plain tar or `+encrypted`).
 * Throws MediaTypeError for a base type containerd does not recognise (soci fails the whole build);
 * callers check `isLayer` first, as soci does.
 */
export function layerCompression(mediaType: string): 'gzip' | 'zstd' | 'uncompressed' | 'unknown' | 'unsupported' {
  const { base, suffixes } = splitMediaType(mediaType);
  const wrapped = suffixes.length > 0;
  switch (base) {
    case MEDIA_TYPE_DOCKER_LAYER:
    case MEDIA_TYPE_DOCKER_LAYER_FOREIGN:
      return wrapped ? 'unsupported' : 'unknown';
    case MEDIA_TYPE_DOCKER_LAYER_GZIP:
    case MEDIA_TYPE_DOCKER_LAYER_FOREIGN_GZIP:
      return wrapped ? 'unsupported' : 'gzip';
    case MEDIA_TYPE_DOCKER_LAYER_ZSTD:
      return wrapped ? 'unsupported' : 'zstd';
    case MEDIA_TYPE_OCI_LAYER:
    case MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE: {
      const last = suffixes[suffixes.length - 1];
      if (last === 'gzip' || last === 'zstd') return last;
      // containerd returns "" here; soci turns it into "uncompressed" only for the plain OCI tar type.
      return mediaType === MEDIA_TYPE_OCI_LAYER ? 'uncompressed' : 'unsupported';
    }
    default:
      throw new MediaTypeError(`unrecognised layer media type ${JSON.stringify(mediaType)}`);
  }
}
