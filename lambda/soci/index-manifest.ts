// The SOCI index manifest (docs/format.md §4.1, §4.2): an OCI image manifest whose config is the empty
// `{}` blob typed as the SOCI artifact, whose layers are the zTOC descriptors in image-layer order followed
// by the prefetch artifacts, with `subject` in v1 only; serialized as Go encoding/json does.
import { descriptorFor } from '../oci/digest.ts';
import { type Manifest, marshalManifest } from '../oci/go-json.ts';
import {
  ANNOTATION_BUILD_TOOL_IDENTIFIER,
  ANNOTATION_DISABLE_XATTRS,
  ANNOTATION_IMAGE_LAYER_DIGEST,
  ANNOTATION_IMAGE_LAYER_MEDIA_TYPE,
  ANNOTATION_SPAN_SIZE,
  EMPTY_JSON_CONFIG,
  MEDIA_TYPE_OCI_MANIFEST,
  SOCI_INDEX_ARTIFACT_TYPE_V1,
  SOCI_INDEX_ARTIFACT_TYPE_V2,
  SOCI_ZTOC_MEDIA_TYPE,
} from '../oci/media-types.ts';
import type { Descriptor } from '../oci/target.ts';
import type { IndexVersion } from './types.ts';

export function artifactTypeOf(version: IndexVersion): string {
  return version === 'v1' ? SOCI_INDEX_ARTIFACT_TYPE_V1 : SOCI_INDEX_ARTIFACT_TYPE_V2;
}

/** The `{}` config blob every SOCI index points to. */
export const EMPTY_CONFIG_BYTES = new TextEncoder().encode(EMPTY_JSON_CONFIG.content);

/** A zTOC's descriptor in the index; `disableXattrs` only with the xattr optimisation and a clean layer. */
export function ztocDescriptor(
  layer: Descriptor,
  ztoc: { digest: string; size: number },
  spanSize: number,
  disableXattrs: boolean,
): Descriptor {
  return {
    mediaType: SOCI_ZTOC_MEDIA_TYPE,
    digest: ztoc.digest,
    size: ztoc.size,
    annotations: {
      [ANNOTATION_IMAGE_LAYER_MEDIA_TYPE]: layer.mediaType,
      [ANNOTATION_IMAGE_LAYER_DIGEST]: layer.digest,
      [ANNOTATION_SPAN_SIZE]: String(spanSize),
      ...(disableXattrs && { [ANNOTATION_DISABLE_XATTRS]: 'true' }),
    },
  };
}

export interface SociIndex {
  /** `{mediaType, digest, size, artifactType}` as upstream describes the index it wrote. */
  descriptor: Descriptor;
  bytes: Uint8Array;
  manifest: Manifest;
}

/** Builds and serializes a SOCI index; `subject` (the image manifest) is given for v1 only. */
export function sociIndex(version: IndexVersion, blobs: Descriptor[], buildToolId: string, subject?: Descriptor): SociIndex {
  const artifactType = artifactTypeOf(version);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    config: { mediaType: artifactType, digest: EMPTY_JSON_CONFIG.digest, size: EMPTY_JSON_CONFIG.size },
    layers: blobs,
    ...(subject && { subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size } }),
    annotations: { [ANNOTATION_BUILD_TOOL_IDENTIFIER]: buildToolId },
  };
  const bytes = marshalManifest(manifest);
  return { bytes, manifest, descriptor: descriptorFor(MEDIA_TYPE_OCI_MANIFEST, bytes, { artifactType }) };
}
