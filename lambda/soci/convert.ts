// The v2 binding, laid out exactly as upstream's `soci convert` (docs/format.md §4.4): every image manifest
// of the image is re-encoded as an OCI manifest with an OCI config type (those that got a SOCI index gain
// the `com.amazon.soci.index-digest` annotation), and a new OCI image index lists the rewritten manifests
// followed by one descriptor per SOCI index. Pure: computes bytes and digests, pushes nothing.
import { descriptorFor } from '../oci/digest.ts';
import { type Index, type Manifest, marshalIndex, marshalManifest } from '../oci/go-json.ts';
import {
  ANNOTATION_IMAGE_MANIFEST_DIGEST,
  ANNOTATION_SOCI_INDEX_DIGEST,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  SOCI_INDEX_ARTIFACT_TYPE_V2,
} from '../oci/media-types.ts';
import type { Descriptor, Platform } from '../oci/target.ts';
import { platformMatches } from './platform.ts';
import type { SourceImage } from './source.ts';

/** A SOCI v2 index to bind to the source manifest `manifestDigest`, for `platform`. */
export interface Binding {
  manifestDigest: string;
  platform: Platform;
  /** The index as written: `{mediaType, digest, size, artifactType}`. */
  index: Descriptor;
}

export interface ConvertedManifest {
  /** The source manifest it was rewritten from. */
  sourceDigest: string;
  descriptor: Descriptor;
  bytes: Uint8Array;
}

export interface Converted {
  /** The rewritten image manifests, in index order (children of the new index). */
  manifests: ConvertedManifest[];
  index: { descriptor: Descriptor; bytes: Uint8Array };
  /** The new image manifest digest, by source manifest digest. */
  convertedDigests: Map<string, string>;
}

function sourceIndex(source: SourceImage): Index {
  if (source.kind === 'index') {
    // Re-decoded into the image-spec type (unknown fields dropped) and retyped as an OCI index.
    return { ...source.index, manifests: source.index.manifests ? [...source.index.manifests] : null, mediaType: MEDIA_TYPE_OCI_INDEX };
  }
  // A single manifest becomes a one-entry index; its descriptor gets the platform read from its config.
  return { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [source.images[0]?.descriptor ?? source.root] };
}

function childManifests(source: SourceImage): Map<string, Manifest> {
  if (source.kind === 'index') return new Map([...source.children].map(([digest, child]) => [digest, child.manifest]));
  return new Map(source.images.map((image) => [image.descriptor.digest, image.manifest]));
}

/** Rewrites `source` with `bindings` (one per platform that got a SOCI index). */
export function convertImage(source: SourceImage, bindings: readonly Binding[]): Converted {
  const index = sourceIndex(source);
  const children = childManifests(source);
  const manifests: ConvertedManifest[] = [];
  const convertedDigests = new Map<string, string>();
  const entries = index.manifests ?? [];

  entries.forEach((entry, i) => {
    const manifest = children.get(entry.digest);
    // Entries that are not image manifests, or could not be read, stay as they are.
    if (!manifest) return;
    const binding = bindings.find((b) => b.manifestDigest === entry.digest);
    const annotations = binding ? { ...manifest.annotations, [ANNOTATION_SOCI_INDEX_DIGEST]: binding.index.digest } : manifest.annotations;
    const rewritten: Manifest = {
      ...manifest,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      config: { ...manifest.config, mediaType: MEDIA_TYPE_OCI_CONFIG },
      ...(annotations !== undefined && { annotations }),
    };
    const bytes = marshalManifest(rewritten);
    const { digest, size } = descriptorFor(MEDIA_TYPE_OCI_MANIFEST, bytes);
    // The descriptor keeps its other fields (platform, urls …) but takes the manifest's annotations.
    const { annotations: _replaced, ...kept } = entry;
    const descriptor: Descriptor = {
      ...kept,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      digest,
      size,
      ...(annotations !== undefined && { annotations }),
    };
    entries[i] = descriptor;
    manifests.push({ sourceDigest: entry.digest, descriptor, bytes });
    convertedDigests.set(entry.digest, digest);
  });

  for (const binding of bindings) {
    const converted = convertedDigests.get(binding.manifestDigest);
    const descriptor: Descriptor = {
      ...binding.index,
      ...(converted !== undefined && { annotations: { [ANNOTATION_IMAGE_MANIFEST_DIGEST]: converted } }),
      platform: binding.platform,
    };
    // An existing SOCI v2 descriptor of the same platform is replaced, as upstream does.
    const existing = entries.findIndex(
      (d) => d.artifactType === SOCI_INDEX_ARTIFACT_TYPE_V2 && d.platform !== undefined && platformMatches(binding.platform, d.platform),
    );
    if (existing >= 0) entries[existing] = descriptor;
    else entries.push(descriptor);
  }

  const bytes = marshalIndex({ ...index, manifests: index.manifests === null && entries.length === 0 ? null : entries });
  return { manifests, index: { descriptor: descriptorFor(MEDIA_TYPE_OCI_INDEX, bytes), bytes }, convertedDigests };
}
