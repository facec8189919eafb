// Decisions taken from the event alone, before any registry traffic: pushes of another account's registry,
// pushes we must never index (our own output, untagged child manifests, non-image artifacts) and pushes
// outside the allow-list. The core
// re-checks what only the manifest can tell (an image index that already carries SOCI descriptors).

import { matchFilter } from '../oci/filters.ts';
import {
  isIndex,
  isManifest,
  MEDIA_TYPE_DOCKER_CONFIG,
  MEDIA_TYPE_OCI_CONFIG,
  SOCI_INDEX_ARTIFACT_TYPE_V1,
  SOCI_INDEX_ARTIFACT_TYPE_V2,
} from '../oci/media-types.ts';
import type { HandlerConfig } from './config.ts';
import type { EcrPush } from './event.ts';

/** Stable reason codes: the `reason` metric dimension and the log field. */
export type SkipCode = 'cross-account' | 'own-output' | 'untagged' | 'not-an-image' | 'filtered-out';

export interface Skip {
  code: SkipCode;
  /** One line for people. */
  message: string;
}

// Non-image artifacts ECR stores next to images, by artifact (config) media type.
const ARTIFACT_KINDS: [RegExp, string][] = [
  [/^application\/vnd\.cncf\.notary\./, 'signature (Notation)'],
  [/^application\/vnd\.dev\.cosign\./, 'signature (cosign)'],
  [/^application\/vnd\.dev\.sigstore\./, 'signature (Sigstore bundle)'],
  [/^application\/vnd\.in-toto/, 'attestation (in-toto)'],
  [/^application\/vnd\.dsse\./, 'attestation (DSSE)'],
  [/^application\/(spdx|vnd\.cyclonedx|vnd\.syft)\b|^text\/spdx/, 'SBOM'],
  [/^application\/vnd\.cncf\.helm\./, 'Helm chart'],
  [/^application\/vnd\.oci\.empty\.v1\+json$/, 'OCI artifact'],
];

// cosign stores signatures, attestations and SBOMs under `sha256-<hex>.sig|.att|.sbom`; the OCI referrers
// tag-schema fallback uses the bare `sha256-<hex>` tag for an index of referrers.
const ARTIFACT_TAG = /^sha256-[a-f0-9]{64}(\.(sig|att|sbom))?$/;

function isSociArtifact(mediaType: string | undefined): boolean {
  return mediaType === SOCI_INDEX_ARTIFACT_TYPE_V1 || mediaType === SOCI_INDEX_ARTIFACT_TYPE_V2;
}

/** What kind of non-image artifact this push is, or undefined when it may be an image. */
function nonImageKind(push: EcrPush): string | undefined {
  if (push.tag !== undefined && ARTIFACT_TAG.test(push.tag)) {
    return push.tag.includes('.') ? `cosign ${push.tag.slice(push.tag.lastIndexOf('.') + 1)} artifact` : 'referrers index (tag schema)';
  }
  const manifest = push.manifestMediaType;
  if (manifest !== undefined && !isManifest(manifest) && !isIndex(manifest)) return `manifest of type ${manifest}`;
  const artifact = push.artifactMediaType;
  // ECR reports the config media type of an image here; for indexes the field is absent or a manifest type.
  if (artifact === undefined || artifact === MEDIA_TYPE_OCI_CONFIG || artifact === MEDIA_TYPE_DOCKER_CONFIG) return undefined;
  if (isManifest(artifact) || isIndex(artifact)) return undefined;
  const known = ARTIFACT_KINDS.find(([pattern]) => pattern.test(artifact));
  return `${known ? known[1] : 'artifact'} of type ${artifact}`;
}

/**
 * Why this push must not be indexed, or undefined to go on and build. Checked in order of specificity.
 * `functionAccount` is the account the function runs in (from its ARN), when known.
 */
export function skipReason(push: EcrPush, config: HandlerConfig, functionAccount?: string): Skip | undefined {
  if (push.account !== undefined && functionAccount !== undefined && push.account !== functionAccount) {
    // ECR sends push events only to the default bus of the account that owns the registry; one that gets
    // here was forwarded, and the function's role and the allow-list cover only its own registry.
    return {
      code: 'cross-account',
      message: `push to account ${push.account}'s registry, but this function runs in account ${functionAccount}: cross-account indexing is not supported, deploy the indexer in account ${push.account}`,
    };
  }
  if (push.tag?.endsWith(config.tagSuffix)) {
    return { code: 'own-output', message: `tag ${push.tag} ends with the output suffix ${config.tagSuffix}: our own output` };
  }
  if (isSociArtifact(push.artifactMediaType)) {
    return { code: 'own-output', message: `artifact type ${push.artifactMediaType} is a SOCI index: our own output` };
  }
  const kind = nonImageKind(push);
  if (kind !== undefined) return { code: 'not-an-image', message: `not an image: ${kind}` };
  if (push.tag === undefined) {
    // Documented choice: a multi-platform push sends one untagged event per child manifest and one tagged
    // event for the index; the index build covers every child. An image pushed by digest only has no tag
    // to derive the output tag from.
    return {
      code: 'untagged',
      message: 'untagged push (a child manifest of a multi-platform image, or pushed by digest): the tagged push is indexed',
    };
  }
  if (!matchFilter(config.filters, push.repository, push.tag)) {
    return { code: 'filtered-out', message: `${push.repository}:${push.tag} matches none of the repository filters` };
  }
  return undefined;
}
