// The manifest media types the registry client asks for and recognises (all four, in every Accept).
import {
  isIndex,
  isManifest,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
} from '../oci/media-types.ts';

/** docker-registry 2.8 answers 404 for an OCI manifest unless OCI types are accepted, so always list all four. */
export const MANIFEST_ACCEPT = [
  MEDIA_TYPE_OCI_MANIFEST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
].join(', ');

/** Media types served from `/v2/<repo>/manifests/`; everything else is a blob. */
export function isManifestMediaType(mediaType: string): boolean {
  return isManifest(mediaType) || isIndex(mediaType);
}
