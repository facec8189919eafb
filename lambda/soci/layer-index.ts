// Indexes one layer stream: the zTOC plus what the SOCI index needs from its TOC (the xattr verdict and
// prefetch matches), so the TOC itself never has to leave the thread that built it. Pure: runs the same
// in the main thread and in a layer worker.
import { buildZtoc, type ZtocSummary } from '../ztoc/builder.ts';
import { entryReader } from '../ztoc/toc-table.ts';
import type { CompressionAlgorithm } from '../ztoc/types.ts';
import { findPrefetchSpans, type PrefetchSpan } from './prefetch.ts';

const SCHILY_XATTR = Buffer.from('SCHILY.xattr.');
const WHITEOUT_OPAQUE = Buffer.from('.wh..wh..opq');

export interface LayerIndexOptions {
  spanSize: number;
  compression: CompressionAlgorithm;
  buildToolId: string;
  prefetchPaths: string[];
  /** The layer's size from its descriptor. */
  sizeHint: number;
}

export type LayerIndexResult =
  | {
      indexable: true;
      bytes: Uint8Array;
      summary: ZtocSummary;
      /** No entry carries a `SCHILY.xattr.*` record and none is an opaque-directory marker (spec 4.2). */
      noXattrs: boolean;
      /** Requested prefetch path → spans of this layer, for the paths found in it. */
      prefetch: Map<string, PrefetchSpan>;
    }
  /** `code`: the engine's stable reason (`limit-exceeded`, `bad-gzip`, ...; ZtocError codes). */
  | { indexable: false; code: string; reason: string };

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
}

function endsWith(bytes: Uint8Array, suffix: Uint8Array): boolean {
  const at = bytes.length - suffix.length;
  return at >= 0 && suffix.every((b, i) => bytes[at + i] === b);
}

/**
 * True when no TOC entry carries a `SCHILY.xattr.*` record and none is an opaque-directory marker (spec
 * 4.2): the verdict behind the `disable-xattrs` annotation, shared by the build and the already-indexed check.
 */
export function hasNoXattrs(count: number, entryAt: (i: number) => { name: Uint8Array; xattrs: readonly { key: Uint8Array }[] }): boolean {
  for (let i = 0; i < count; i++) {
    const entry = entryAt(i);
    if (endsWith(entry.name, WHITEOUT_OPAQUE) || entry.xattrs.some((record) => startsWith(record.key, SCHILY_XATTR))) return false;
  }
  return true;
}

export async function indexLayerStream(stream: AsyncIterable<Uint8Array>, options: LayerIndexOptions): Promise<LayerIndexResult> {
  const outcome = await buildZtoc(stream, {
    spanSize: options.spanSize,
    compression: options.compression,
    buildToolId: options.buildToolId,
    sizeHint: options.sizeHint,
  });
  if (!outcome.indexable) return { indexable: false, code: outcome.code, reason: outcome.reason };
  const { toc } = outcome;
  const noXattrs = hasNoXattrs(toc.length, entryReader(toc));
  // The whole model (checkpoints included) is materialized only when prefetch paths were asked for.
  const prefetch =
    options.prefetchPaths.length > 0 ? findPrefetchSpans(outcome.ztoc, options.prefetchPaths) : new Map<string, PrefetchSpan>();
  return { indexable: true, bytes: outcome.bytes, summary: outcome.summary, noXattrs, prefetch };
}
