// The contract between the adapters (CLI, Lambda handler) and the soci core.
import type { ErrorKind, TargetFailure } from '../oci/errors.ts';
import type { Platform } from '../oci/target.ts';
import type { ZtocCache } from './ztoc-cache.ts';

export type IndexVersion = 'v1' | 'v2';

import type { TagPolicy } from './tag-policy.ts';

export type { TagPolicy } from './tag-policy.ts';

export interface BuildOptions {
  /** @default 4194304 */
  spanSize: number;
  /** Layers smaller than this are skipped. @default 10485760 */
  minLayerSize: number;
  /** @default 'v2' */
  indexVersion: IndexVersion;
  /** 'all' or platform strings such as `linux/amd64`, `linux/arm64/v8`. @default 'all' */
  platforms: 'all' | string[];
  /** Written into zTOCs and the index annotation. */
  buildToolId: string;
  /** Layers indexed at once. @default number of CPUs */
  concurrency: number;
  tagPolicy: TagPolicy;
  /** `xattr`: annotate zTOCs of layers without xattrs/opaque dirs with `disable-xattrs`. */
  optimizations?: 'xattr'[];
  /** Paths whose spans the snapshotter should prefetch. */
  prefetchFiles?: string[];
  /** Build everything, push nothing. */
  dryRun?: boolean;
  signal?: AbortSignal;
  /**
   * Epoch milliseconds by which all pushing must be finished (Lambda's remaining time). When the work
   * cannot finish in time the build stops before tagging and fails with a timeout reason.
   */
  deadline?: number;
  onEvent?: (event: BuildEvent) => void;
  /**
   * Where zTOCs already built are looked up before a layer is read, and where new ones are stored as
   * soon as they are built. A cache failure never fails the build. @default no cache
   */
  ztocCache?: ZtocCache;
}

export type BuildEvent =
  | { type: 'resolved'; reference: string; digest: string; mediaType: string; platforms: string[] }
  | { type: 'layer-start'; platform: string; layer: string; size: number }
  | { type: 'layer-progress'; platform: string; layer: string; bytesRead: number; size: number }
  | { type: 'layer-done'; platform: string; result: LayerResult }
  | { type: 'push'; what: string; digest: string }
  | { type: 'tag'; tag: string; digest: string }
  | { type: 'log'; level: 'info' | 'warn'; message: string };

/**
 * Why a layer has no zTOC, as a stable code that the `--json` summary, the human summary, the Lambda's
 * completion event and the `LayersSkipped` metric carry (README "Layers that get no zTOC"). The
 * human-readable `reason` stays next to it.
 */
export const SKIP_CODE = {
  /** A SOCI prefetch artifact listed among the layers. */
  notALayer: 'not-a-layer',
  /** Smaller than `minLayerSize`. */
  belowMinimumSize: 'below-minimum-size',
  /** zstd, or a layer media type SOCI does not index (encrypted, nondistributable, ...). */
  unsupportedFormat: 'unsupported-format',
  /** The engine refused its bytes (not gzip, a bad tar, ...); `code` says why. */
  cannotBeIndexed: 'cannot-be-indexed',
  /** Past a documented limit (README "Limits"); `code` is `limit-exceeded` too. */
  limitExceeded: 'limit-exceeded',
  /** An existing SOCI index (an idempotent run) has no zTOC for it. */
  notIndexed: 'not-indexed',
} as const;

export type SkipCode = (typeof SKIP_CODE)[keyof typeof SKIP_CODE];

export interface LayerResult {
  digest: string;
  mediaType: string;
  size: number;
  status: 'indexed' | 'skipped';
  /** Why the layer was skipped, for people (`below minimum layer size (…)`, `zstd layers cannot be indexed`, an error line). */
  reason?: string;
  /** Why the layer was skipped, as a stable code (present exactly when `status` is `skipped`). */
  skipCode?: SkipCode;
  /**
   * For a layer the engine could not index, its stable reason code: `limit-exceeded` (past a documented
   * limit of README "Limits"), `bad-gzip`, `bad-tar`, `truncated`, ... (ZtocError codes).
   */
  code?: string;
  ztocDigest?: string;
  ztocSize?: number;
  /** How an indexed layer's zTOC was obtained: built from the layer, or reused from the zTOC cache (layer not read). */
  ztoc?: 'built' | 'reused';
  spans?: number;
  entries?: number;
  durationMs?: number;
}

export interface PlatformResult {
  platform: string;
  /** The source image manifest. */
  manifestDigest: string;
  /** The SOCI index manifest (absent when no layer qualified). */
  indexDigest?: string;
  /** v2: the rewritten image manifest carrying the index-digest annotation. */
  convertedManifestDigest?: string;
  layers: LayerResult[];
}

/**
 * `superseded`: the source tag stopped naming the indexed digest during the build (a newer push, or a
 * deletion), so nothing was tagged; the untagged SOCI content that was pushed is harmless.
 */
export type BuildStatus = 'created' | 'already-indexed' | 'no-eligible-layers' | 'not-an-image' | 'superseded';

export interface BuildResult {
  status: BuildStatus;
  /** One line for people: `no layer at or above the minimum size`, `already indexed`, ... */
  message: string;
  source: { reference: string; digest: string; mediaType: string; tag?: string };
  indexVersion: IndexVersion;
  /** v2: the SOCI-enabled image index; v1: the SOCI index manifest (single platform) or undefined. */
  output?: { digest: string; mediaType: string; tags: string[] };
  platforms: PlatformResult[];
  bytesRead: number;
  ztocBytes: number;
  durationMs: number;
  dryRun: boolean;
  /** What the zTOC cache did (present only when one was configured). */
  cache?: CacheStats;
}

export interface CacheStats {
  /** The cache's repository or layout. */
  location: string;
  /** Layers whose zTOC was reused (not read). */
  reused: number;
  /** Compressed bytes of those layers: what was not read. */
  bytesSaved: number;
  /** Lookups that found no entry, and entries ignored because they did not check out. */
  misses: number;
  invalid: number;
  /** zTOCs written to the cache. */
  stored: number;
  /** Lookups and writes that failed (logged; the build went on without the cache). */
  failures: number;
}

/**
 * Failures of a build. `transient` ones (throttling, 5xx, network, deadline) may succeed when retried;
 * `permanent` ones (bad image, unsupported format, missing manifest) will not.
 */
export class SociError extends Error implements TargetFailure {
  /** The verdict in the shared vocabulary (oci/errors.ts): only `transient` is ever retried. */
  get errorKind(): ErrorKind {
    return this.kind;
  }

  constructor(
    readonly kind: 'transient' | 'permanent',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SociError';
  }
}

export type { Platform };
