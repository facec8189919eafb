// Which layers get a zTOC, in upstream's order of checks (docs/format.md §4.3, `buildSociLayer`):
// prefetch artifacts are ignored, a non-layer media type fails the image, small layers are skipped, then
// the compression decides: an algorithm of the zTOC compression table indexes it (gzip, plain tar), others
// (zstd, wrapped variants) are skipped.
import { MediaTypeError } from '../oci/errors.ts';
import { isLayer, layerCompression, SOCI_PREFETCH_MEDIA_TYPE } from '../oci/media-types.ts';
import type { Descriptor } from '../oci/target.ts';
import { compressionForMediaType } from '../ztoc/compression/table.ts';
import type { CompressionAlgorithm } from '../ztoc/types.ts';
import { SKIP_CODE, type SkipCode, SociError } from './types.ts';

export type LayerDecision = { action: 'index'; compression: CompressionAlgorithm } | { action: 'skip'; reason: string; code: SkipCode };

/**
 * The decision for one layer of `image` (named in errors). Throws a permanent SociError where upstream
 * fails the whole build: a descriptor that is not a layer, or a layer base type containerd does not know.
 */
export function selectLayer(layer: Descriptor, minLayerSize: number, image: string): LayerDecision {
  if (layer.mediaType === SOCI_PREFETCH_MEDIA_TYPE)
    return { action: 'skip', code: SKIP_CODE.notALayer, reason: 'a SOCI prefetch artifact, not a layer' };
  if (!isLayer(layer.mediaType)) {
    throw new SociError(
      'permanent',
      `${image}: ${layer.digest} has media type ${JSON.stringify(layer.mediaType)}, which is not a layer type`,
    );
  }
  if (layer.size < minLayerSize) {
    return { action: 'skip', code: SKIP_CODE.belowMinimumSize, reason: `below minimum layer size (${layer.size} < ${minLayerSize})` };
  }
  let compression: ReturnType<typeof layerCompression>;
  try {
    compression = layerCompression(layer.mediaType);
  } catch (err) {
    if (err instanceof MediaTypeError) throw new SociError('permanent', `${image}: layer ${layer.digest}: ${err.message}`, { cause: err });
    throw err;
  }
  if (compression === 'unsupported')
    return { action: 'skip', code: SKIP_CODE.unsupportedFormat, reason: `layers of media type ${layer.mediaType} cannot be indexed` };
  const algorithm = compressionForMediaType(compression);
  if (!algorithm) return { action: 'skip', code: SKIP_CODE.unsupportedFormat, reason: `${compression} layers cannot be indexed` };
  return { action: 'index', compression: algorithm.name };
}
