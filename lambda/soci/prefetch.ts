// Prefetch artifacts (docs/format.md §4.6): for each requested path, the spans of the topmost layer whose
// zTOC lists an entry of exactly that (cleaned) name, merged per layer and stored as a small JSON blob that
// the SOCI index lists after the zTOCs.
import { descriptorFor } from '../oci/digest.ts';
import { goInt, goMarshal, goSlice, goString, goStruct } from '../oci/go-json.ts';
import { ANNOTATION_IMAGE_LAYER_DIGEST, SOCI_PREFETCH_MEDIA_TYPE, SOCI_PREFETCH_VERSION } from '../oci/media-types.ts';
import type { Descriptor } from '../oci/target.ts';
import { compressionNamed } from '../ztoc/compression/table.ts';
import type { Ztoc } from '../ztoc/types.ts';

export interface PrefetchSpan {
  start: number;
  end: number;
}

const prefetchSchema = goStruct([
  { json: 'version', type: goString },
  {
    json: 'prefetch_spans',
    prop: 'spans',
    type: goSlice(
      goStruct([
        { json: 'start_span', prop: 'start', type: goInt },
        { json: 'end_span', prop: 'end', type: goInt },
        { json: 'priority', type: goInt, omitempty: true },
      ]),
    ),
  },
]);

/** Go `path.Clean("/" + p)` without the leading slash, as upstream cleans prefetch paths. */
export function cleanPrefetchPath(path: string): string {
  const parts: string[] = [];
  for (const part of `/${path}`.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return parts.join('/');
}

/** The span of an uncompressed offset, as the zTOC's compression algorithm locates it. */
function spanLocator(ztoc: Ztoc): (offset: number) => number {
  return compressionNamed(ztoc.compressionAlgorithm).spanLocator(ztoc.checkpoints);
}

/**
 * For each cleaned path listed in this zTOC (the first entry with exactly that raw name), its span range:
 * the spans holding the file's first byte through its end offset.
 */
export function findPrefetchSpans(ztoc: Ztoc, cleanedPaths: readonly string[]): Map<string, PrefetchSpan> {
  const found = new Map<string, PrefetchSpan>();
  if (cleanedPaths.length === 0) return found;
  const wanted = new Map(cleanedPaths.map((p) => [Buffer.from(p, 'utf8').toString('latin1'), p]));
  let locate: ((offset: number) => number) | undefined;
  for (const entry of ztoc.toc) {
    // Names are raw bytes; compare them byte for byte (latin1 maps each byte to one code unit).
    const path = wanted.get(Buffer.from(entry.name.buffer, entry.name.byteOffset, entry.name.byteLength).toString('latin1'));
    if (path === undefined || found.has(path)) continue;
    locate ??= spanLocator(ztoc);
    const start = locate(entry.uncompressedOffset);
    const end = Math.max(start, locate(entry.uncompressedOffset + entry.uncompressedSize));
    found.set(path, { start, end });
  }
  return found;
}

/** Sorts by start (then end) and merges overlapping or adjacent ranges. */
export function mergeSpans(spans: readonly PrefetchSpan[]): PrefetchSpan[] {
  const sorted = [...spans].sort((a, b) => a.start - b.start || a.end - b.end);
  const merged: PrefetchSpan[] = [];
  for (const span of sorted) {
    const last = merged[merged.length - 1];
    if (last && span.start <= last.end + 1) last.end = Math.max(last.end, span.end);
    else merged.push({ ...span });
  }
  return merged;
}

export interface PrefetchBlob {
  descriptor: Descriptor;
  bytes: Uint8Array;
}

/** The prefetch artifact of one layer and its index descriptor. */
export function prefetchArtifact(layerDigest: string, spans: readonly PrefetchSpan[]): PrefetchBlob {
  const bytes = goMarshal(prefetchSchema, { version: SOCI_PREFETCH_VERSION, spans: mergeSpans(spans) });
  return {
    bytes,
    descriptor: descriptorFor(SOCI_PREFETCH_MEDIA_TYPE, bytes, { annotations: { [ANNOTATION_IMAGE_LAYER_DIGEST]: layerDigest } }),
  };
}

/**
 * The prefetch artifacts of one image: each path goes to the topmost layer (last in `layers`) that found
 * it; artifacts come out in layer order. `found` gives, per layer digest, what that layer's zTOC matched.
 */
export function prefetchArtifacts(
  layers: readonly Descriptor[],
  found: (layer: Descriptor) => Map<string, PrefetchSpan> | undefined,
  paths: readonly string[],
): PrefetchBlob[] {
  const perLayer = new Map<string, PrefetchSpan[]>();
  for (const path of paths) {
    for (let i = layers.length - 1; i >= 0; i--) {
      const span = found(layers[i]!)?.get(path);
      if (span === undefined) continue;
      const digest = layers[i]!.digest;
      perLayer.set(digest, [...(perLayer.get(digest) ?? []), span]);
      break;
    }
  }
  // Like upstream, a layer listed twice in the manifest gets its artifact listed twice.
  return layers.flatMap((layer) => {
    const spans = perLayer.get(layer.digest);
    return spans ? [prefetchArtifact(layer.digest, spans)] : [];
  });
}
