// The image-spec v1.1.1 Go structs (specs-go/v1 Descriptor, Platform, Manifest, Index) as Go JSON
// schemas, and their Marshal/Unmarshal. Upstream soci builds and re-encodes manifests with these
// structs, so these functions give the same bytes as upstream (docs/format.md §4.1, §4.4).
//
// nil versus empty: Go prints a nil `layers`/`manifests` slice as `null` and an empty one as `[]`.
// Unmarshal yields nil when the field is absent or null, so `parseManifest` returns `layers: null`
// then and re-marshalling prints `null`, as upstream's convert does for such (invalid) manifests.
// Values built in TypeScript should use arrays; `[]` prints `[]`.

import {
  type GoField,
  type GoStruct,
  goBytes,
  goInt,
  goMarshal,
  goPointer,
  goSlice,
  goString,
  goStringMap,
  goStruct,
  goUnmarshal,
} from './go-json-codec.ts';
import type { Descriptor } from './target.ts';

export type { GoField, GoStruct, GoType } from './go-json-codec.ts';
// One entry point for callers with their own Go structs (e.g. soci's prefetch artifact).
export {
  goBytes,
  goInt,
  goMarshal,
  goMarshalString,
  goPointer,
  goQuote,
  goSlice,
  goString,
  goStringMap,
  goStruct,
  goUnmarshal,
} from './go-json-codec.ts';

/** image-spec `v1.Manifest`. */
export interface Manifest {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  /** null is Go's nil slice (printed as `null`). */
  layers: Descriptor[] | null;
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/** image-spec `v1.Index`. */
export interface Index {
  schemaVersion: number;
  mediaType?: string;
  artifactType?: string;
  /** null is Go's nil slice (printed as `null`). */
  manifests: Descriptor[] | null;
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export const platformSchema: GoStruct = goStruct([
  { json: 'architecture', type: goString },
  { json: 'os', type: goString },
  { json: 'os.version', type: goString, omitempty: true },
  { json: 'os.features', type: goSlice(goString), omitempty: true },
  { json: 'variant', type: goString, omitempty: true },
]);

export const descriptorSchema: GoStruct = goStruct([
  { json: 'mediaType', type: goString },
  { json: 'digest', type: goString },
  { json: 'size', type: goInt },
  { json: 'urls', type: goSlice(goString), omitempty: true },
  { json: 'annotations', type: goStringMap, omitempty: true },
  { json: 'data', type: goBytes, omitempty: true },
  { json: 'platform', type: goPointer(platformSchema), omitempty: true },
  { json: 'artifactType', type: goString, omitempty: true },
]);

// Manifest and Index share their leading and trailing fields, in the same order.
const versionedHead: readonly GoField[] = [
  { json: 'schemaVersion', type: goInt },
  { json: 'mediaType', type: goString, omitempty: true },
  { json: 'artifactType', type: goString, omitempty: true },
];
const subjectAndAnnotations: readonly GoField[] = [
  { json: 'subject', type: goPointer(descriptorSchema), omitempty: true },
  { json: 'annotations', type: goStringMap, omitempty: true },
];

export const manifestSchema: GoStruct = goStruct([
  ...versionedHead,
  { json: 'config', type: descriptorSchema },
  { json: 'layers', type: goSlice(descriptorSchema) },
  ...subjectAndAnnotations,
]);

export const indexSchema: GoStruct = goStruct([
  ...versionedHead,
  { json: 'manifests', type: goSlice(descriptorSchema) },
  ...subjectAndAnnotations,
]);

export function marshalManifest(manifest: Manifest): Uint8Array {
  return goMarshal(manifestSchema, manifest);
}

export function marshalIndex(index: Index): Uint8Array {
  return goMarshal(indexSchema, index);
}

export function marshalDescriptor(descriptor: Descriptor): Uint8Array {
  return goMarshal(descriptorSchema, descriptor);
}

/** json.Unmarshal into `v1.Manifest`: unknown fields dropped; throws GoJsonError where Go errors. */
export function parseManifest(bytes: Uint8Array): Manifest {
  return goUnmarshal(manifestSchema, bytes) as Manifest;
}

/** json.Unmarshal into `v1.Index`: unknown fields dropped; throws GoJsonError where Go errors. */
export function parseIndex(bytes: Uint8Array): Index {
  return goUnmarshal(indexSchema, bytes) as Index;
}

export function parseDescriptor(bytes: Uint8Array): Descriptor {
  return goUnmarshal(descriptorSchema, bytes) as Descriptor;
}
