// The soci core: builds the SOCI index of an image held by a Target (registry or OCI layout) and publishes
// it, v2 (`soci convert`: a SOCI-enabled image index under an output tag) by default or v1 (an index
// manifest with `subject`, found through the referrers API).
//
// One deliberate difference from upstream: a layer whose zTOC cannot be built (bad gzip, a tar entry soci
// does not support …) is skipped with its reason and the rest of the image is still indexed, where
// upstream fails the whole build. The snapshotter lazily loads the layers that have a zTOC and pulls the
// others whole, so a partial index is still useful; the reason is reported per layer.
import { availableParallelism } from 'node:os';
import {
  ANNOTATION_IMAGE_LAYER_DIGEST,
  ANNOTATION_IMAGE_LAYER_MEDIA_TYPE,
  EMPTY_JSON_CONFIG,
  MEDIA_TYPE_OCI_EMPTY,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  SOCI_ZTOC_MEDIA_TYPE,
} from '../oci/media-types.ts';
import type { Descriptor, Target } from '../oci/target.ts';
import { type Binding, convertImage } from './convert.ts';
import { DEFAULTS } from './defaults.ts';
import { toSociError } from './errors.ts';
import { type ExistingOutput, type Expectation, findV1Output, findV2Output } from './idempotency.ts';
import { EMPTY_CONFIG_BYTES, type SociIndex, sociIndex, ztocDescriptor } from './index-manifest.ts';
import { hasNoXattrs } from './layer-index.ts';
import { buildLayerZtocs, type LayerJob, type LayerOutcome, layerKey } from './layers.ts';
import { cleanPrefetchPath, findPrefetchSpans, prefetchArtifacts } from './prefetch.ts';
import { type Content, publish } from './publish.ts';
import { type LayerDecision, selectLayer } from './select.ts';
import { type PlatformImage, readSource, type SourceImage } from './source.ts';
import { tagPolicyEntry } from './tag-policy.ts';
import { checkDeadline, type OutputTags, outputTags, PUSH_MARGIN_MS, sourceTagMoved, TAG_MARGIN_MS } from './tagging.ts';
import {
  type BuildEvent,
  type BuildOptions,
  type BuildResult,
  type CacheStats,
  type LayerResult,
  type PlatformResult,
  SKIP_CODE,
  type SkipCode,
  SociError,
} from './types.ts';
import type { ZtocCacheKey } from './ztoc-cache.ts';

export const DEFAULT_BUILD_OPTIONS: BuildOptions = {
  spanSize: DEFAULTS.spanSize,
  minLayerSize: DEFAULTS.minLayerSize,
  indexVersion: DEFAULTS.indexVersion,
  platforms: DEFAULTS.platforms,
  buildToolId: DEFAULTS.buildToolId,
  concurrency: availableParallelism(),
  tagPolicy: { mode: 'suffix', suffix: DEFAULTS.tagSuffix },
};

const NO_ELIGIBLE_LAYERS = 'no layer at or above the minimum size';

function validateOptions(options: BuildOptions): void {
  const problems: string[] = [];
  if (!Number.isSafeInteger(options.spanSize) || options.spanSize < 1)
    problems.push(`span size must be a positive integer, got ${options.spanSize}`);
  if (!Number.isSafeInteger(options.minLayerSize) || options.minLayerSize < 0)
    problems.push(`minimum layer size must be an integer ≥ 0, got ${options.minLayerSize}`);
  if (!Number.isSafeInteger(options.concurrency) || options.concurrency < 1)
    problems.push(`concurrency must be an integer ≥ 1, got ${options.concurrency}`);
  if (options.indexVersion !== 'v1' && options.indexVersion !== 'v2')
    problems.push(`index version must be v1 or v2, got ${JSON.stringify(options.indexVersion)}`);
  if (options.platforms !== 'all' && (!Array.isArray(options.platforms) || options.platforms.length === 0))
    problems.push('platforms must be "all" or a non-empty list');
  for (const o of options.optimizations ?? []) if (o !== 'xattr') problems.push(`unknown optimization ${JSON.stringify(o)} (known: xattr)`);
  if (problems.length > 0) throw new SociError('permanent', `invalid build options: ${problems.join('; ')}`);
}

/** What `inspect` found when the build has work to do. */
interface Inspection {
  source: SourceImage;
  plans: ImagePlan[];
  tags: OutputTags;
}

/**
 * Whether the output a build with these options would make already exists (`checkSociIndex`): `indexed`
 * (a build would report already-indexed), `missing` (a build would build), or why there is nothing to
 * build at all.
 */
export interface IndexCheck {
  status: 'indexed' | 'missing' | 'no-eligible-layers' | 'not-an-image';
  message: string;
  source: BuildResult['source'];
  output?: BuildResult['output'];
  /** The source is itself a SOCI-enabled image (our output, e.g. in place): `indexed` whatever its settings. */
  sociEnabled?: boolean;
}

/** One image's layers with the selection's verdict on each. */
interface ImagePlan {
  image: PlatformImage;
  layers: { layer: Descriptor; decision: LayerDecision }[];
}

function skippedResult(layer: Descriptor, skipCode: SkipCode, reason: string, durationMs?: number, code?: string): LayerResult {
  return {
    digest: layer.digest,
    mediaType: layer.mediaType,
    size: layer.size,
    status: 'skipped',
    reason,
    skipCode,
    ...(code !== undefined && { code }),
    ...(durationMs !== undefined && { durationMs }),
  };
}

function layerResult(layer: Descriptor, decision: LayerDecision, outcome: LayerOutcome | undefined): LayerResult {
  if (decision.action === 'skip') return skippedResult(layer, decision.code, decision.reason);
  if (!outcome) return skippedResult(layer, SKIP_CODE.notIndexed, 'not built');
  if (!outcome.indexable) {
    const skipCode = outcome.code === 'limit-exceeded' ? SKIP_CODE.limitExceeded : SKIP_CODE.cannotBeIndexed;
    return skippedResult(layer, skipCode, `cannot be indexed: ${outcome.reason}`, outcome.durationMs, outcome.code);
  }
  const { summary } = outcome;
  return {
    digest: layer.digest,
    mediaType: layer.mediaType,
    size: layer.size,
    status: 'indexed',
    ztocDigest: summary.digest,
    ztocSize: summary.size,
    ztoc: outcome.reused ? 'reused' : 'built',
    spans: summary.spans,
    entries: summary.entries,
    durationMs: outcome.durationMs,
  };
}

/** Layer results of an existing SOCI index (idempotent runs): what has a zTOC, and why the rest has none. */
function existingLayerResults(plan: ImagePlan, index: ExistingOutput['indexes'][number] | undefined): LayerResult[] {
  const key = (digest: string | undefined, mediaType: string | undefined) => `${digest} ${mediaType}`;
  const ztocs = new Map(
    (index?.manifest.layers ?? []).map((d) => [
      key(d.annotations?.[ANNOTATION_IMAGE_LAYER_DIGEST], d.annotations?.[ANNOTATION_IMAGE_LAYER_MEDIA_TYPE]),
      d,
    ]),
  );
  return plan.layers.map(({ layer, decision }) => {
    const ztoc = decision.action === 'index' ? ztocs.get(key(layer.digest, layer.mediaType)) : undefined;
    if (!ztoc)
      return decision.action === 'skip'
        ? skippedResult(layer, decision.code, decision.reason)
        : skippedResult(layer, SKIP_CODE.notIndexed, 'not indexed');
    return {
      digest: layer.digest,
      mediaType: layer.mediaType,
      size: layer.size,
      status: 'indexed',
      ztocDigest: ztoc.digest,
      ztocSize: ztoc.size,
    };
  });
}

/** What the image needs copied into an output that is not the source: its manifests' configs and layers. */
function imageContent(source: SourceImage, version: 'v1' | 'v2'): Descriptor[] {
  const manifests =
    source.kind === 'index' && version === 'v2'
      ? [...source.children.values()].map((c) => c.manifest)
      : source.images.map((i) => i.manifest);
  const blobs = manifests.flatMap((m) => [m.config, ...(m.layers ?? [])]);
  // v1 indexes point at the image manifests themselves.
  return version === 'v1' ? [...blobs, ...source.images.map((i) => i.descriptor)] : blobs;
}

/** The ref name a v1 index gets in an OCI layout, whose referrers are found by scanning index.json. */
export function layoutV1RefName(manifestDigest: string): string {
  return `${manifestDigest.replace(':', '-')}.soci-v1`;
}

class Build {
  private readonly started = Date.now();
  private bytesRead = 0;
  private readonly emit: (event: BuildEvent) => void;
  private readonly cacheStats: CacheStats | undefined;

  constructor(
    private readonly source: Target,
    private readonly output: Target,
    private readonly reference: string,
    private readonly options: BuildOptions,
  ) {
    this.emit = (event) => options.onEvent?.(event);
    if (options.ztocCache)
      this.cacheStats = {
        location: options.ztocCache.description,
        reused: 0,
        bytesSaved: 0,
        misses: 0,
        invalid: 0,
        stored: 0,
        failures: 0,
      };
  }

  private result(partial: Omit<BuildResult, 'indexVersion' | 'bytesRead' | 'durationMs' | 'dryRun'>): BuildResult {
    return {
      ...partial,
      indexVersion: this.options.indexVersion,
      bytesRead: this.bytesRead,
      durationMs: Date.now() - this.started,
      dryRun: this.options.dryRun ?? false,
      ...(this.cacheStats && { cache: { ...this.cacheStats } }),
    };
  }

  private sourceFields(source: { root: Descriptor; tag?: string }): BuildResult['source'] {
    return {
      reference: this.reference,
      digest: source.root.digest,
      mediaType: source.root.mediaType,
      ...(source.tag !== undefined && { tag: source.tag }),
    };
  }

  /**
   * Everything before the first layer read: the source, the selection, the output tags and whether the
   * output this build would make already exists. A `BuildResult` when the build ends there.
   */
  private async inspect(): Promise<BuildResult | Inspection> {
    const { options } = this;
    const verdict = await readSource(this.source, this.reference, options.platforms, options.signal);
    if (verdict.kind !== 'image') {
      const own = verdict.kind === 'own-output';
      this.emit({ type: 'log', level: 'info', message: verdict.reason });
      return this.result({
        status: own ? 'already-indexed' : 'not-an-image',
        message: own ? `already indexed: ${verdict.reason}` : `not an image: ${verdict.reason}`,
        source: this.sourceFields(verdict),
        ...(own && {
          output: { digest: verdict.root.digest, mediaType: verdict.root.mediaType, tags: verdict.tag !== undefined ? [verdict.tag] : [] },
        }),
        platforms: [],
        ztocBytes: 0,
      });
    }
    const source = verdict.source;
    this.emit({
      type: 'resolved',
      reference: this.reference,
      digest: source.root.digest,
      mediaType: source.root.mediaType,
      platforms: source.images.map((i) => i.name),
    });

    const plans: ImagePlan[] = source.images.map((image) => ({
      image,
      layers: (image.manifest.layers ?? []).map((layer) => ({
        layer,
        decision: selectLayer(layer, options.minLayerSize, `${this.source.description} ${image.name}`),
      })),
    }));
    const indexedLayers = new Map(
      plans.map((p) => [
        p.image.descriptor.digest,
        new Set(p.layers.filter((l) => l.decision.action === 'index').map((l) => l.layer.digest)),
      ]),
    );
    if ([...indexedLayers.values()].every((s) => s.size === 0)) return this.noEligibleLayers(source, plans);

    const tags: OutputTags = options.indexVersion === 'v2' ? outputTags(options.tagPolicy, source.tag) : { tags: [] };
    if (tags.untagged) this.emit({ type: 'log', level: 'warn', message: tags.untagged });
    const expectation: Expectation = {
      version: options.indexVersion,
      spanSize: options.spanSize,
      buildToolId: options.buildToolId,
      xattr: options.optimizations?.includes('xattr') ?? false,
      prefetchPaths: (options.prefetchFiles ?? []).map(cleanPrefetchPath),
      indexedLayers,
    };
    const existing =
      options.indexVersion === 'v2'
        ? await findV2Output(this.output, tags.tags, source, expectation)
        : await findV1Output(this.output, source, expectation);
    if (existing) return this.alreadyIndexed(source, plans, existing, tags.tags);
    return { source, plans, tags };
  }

  async run(): Promise<BuildResult> {
    const { options } = this;
    const inspected = await this.inspect();
    if (!('plans' in inspected)) return inspected;
    const { source, plans, tags } = inspected;
    if (tagPolicyEntry(options.tagPolicy).replacesSource && options.indexVersion === 'v2' && tags.tags.length > 0) {
      this.emit({
        type: 'log',
        level: 'warn',
        message: `in place: tag ${tags.tags[0]} will name the SOCI-enabled index instead of the image ${source.root.digest}`,
      });
    }
    options.signal?.throwIfAborted();
    // Reading layers that could not be pushed in time anyway only delays the retry.
    checkDeadline(options.deadline, PUSH_MARGIN_MS, 'reading layers');
    return this.build(source, plans, tags);
  }

  /** What `run` would do, from manifests alone: no layer is read, nothing is written. */
  async check(): Promise<IndexCheck> {
    const inspected = await this.inspect();
    if ('plans' in inspected) {
      const { source } = inspected;
      return { status: 'missing', source: this.sourceFields(source), message: 'no SOCI index made with these settings for this image' };
    }
    const { status, message, source, output, platforms } = inspected;
    const sociEnabled = status === 'already-indexed' && platforms.length === 0;
    return {
      status: status === 'already-indexed' ? 'indexed' : status === 'not-an-image' ? 'not-an-image' : 'no-eligible-layers',
      message,
      source,
      ...(output && { output }),
      ...(sociEnabled && { sociEnabled }),
    };
  }

  private noEligibleLayers(source: SourceImage, plans: ImagePlan[]): BuildResult {
    const platforms = plans.map((p) =>
      this.platformResult(
        p,
        p.layers.map(({ layer, decision }) => layerResult(layer, decision, undefined)),
      ),
    );
    for (const p of platforms) for (const layer of p.layers) this.emit({ type: 'layer-done', platform: p.platform, result: layer });
    const anyLargeEnough = plans.some((p) =>
      p.layers.some((l) => l.decision.action === 'skip' && l.decision.code === SKIP_CODE.unsupportedFormat),
    );
    const reasons = [
      ...new Set(
        plans.flatMap((p) =>
          p.layers.flatMap((l) =>
            l.decision.action === 'skip' && l.decision.code === SKIP_CODE.unsupportedFormat ? [l.decision.reason] : [],
          ),
        ),
      ),
    ];
    return this.result({
      status: 'no-eligible-layers',
      message: anyLargeEnough ? `no indexable layer at or above the minimum size (${reasons.join('; ')})` : NO_ELIGIBLE_LAYERS,
      source: this.sourceFields(source),
      platforms,
      ztocBytes: 0,
    });
  }

  private platformResult(
    plan: ImagePlan,
    layers: LayerResult[],
    extra: { indexDigest?: string; convertedManifestDigest?: string } = {},
  ): PlatformResult {
    return { platform: plan.image.name, manifestDigest: plan.image.descriptor.digest, ...extra, layers };
  }

  private alreadyIndexed(source: SourceImage, plans: ImagePlan[], existing: ExistingOutput, tags: string[]): BuildResult {
    const platforms = plans.map((plan) => {
      const index = existing.indexes.find((i) => i.image === plan.image);
      return this.platformResult(plan, existingLayerResults(plan, index), {
        ...(index && { indexDigest: index.index.digest }),
        ...(index?.convertedManifestDigest !== undefined && { convertedManifestDigest: index.convertedManifestDigest }),
      });
    });
    return this.result({
      status: 'already-indexed',
      message: 'already indexed',
      source: this.sourceFields(source),
      output: { digest: existing.output.digest, mediaType: existing.output.mediaType, tags },
      platforms,
      ztocBytes: 0,
    });
  }

  /** Builds the zTOCs of every selected layer once, emitting layer events for every platform using it. */
  private async buildZtocs(plans: ImagePlan[]): Promise<Map<string, LayerOutcome>> {
    const jobs = new Map<string, { job: LayerJob; uses: { platform: string; layer: Descriptor }[] }>();
    for (const plan of plans) {
      for (const { layer, decision } of plan.layers) {
        if (decision.action === 'skip') {
          this.emit({ type: 'layer-done', platform: plan.image.name, result: layerResult(layer, decision, undefined) });
          continue;
        }
        const key = layerKey(layer, decision.compression);
        const entry = jobs.get(key) ?? { job: { layer, compression: decision.compression, platform: plan.image.name }, uses: [] };
        entry.uses.push({ platform: plan.image.name, layer });
        jobs.set(key, entry);
      }
    }
    const { options } = this;
    return buildLayerZtocs(
      this.source,
      [...jobs.values()].map((j) => j.job),
      {
        spanSize: options.spanSize,
        buildToolId: options.buildToolId,
        concurrency: options.concurrency,
        prefetchPaths: (options.prefetchFiles ?? []).map(cleanPrefetchPath),
        signal: options.signal,
        emit: this.emit,
        onBytes: (n) => (this.bytesRead += n),
        keep: (job, outcome) => this.keepZtoc(job, outcome),
        ...(options.ztocCache && { reuse: (job: LayerJob, signal: AbortSignal) => this.reuseZtoc(job, signal) }),
        onDone: (job, outcome) => {
          if (!outcome.indexable)
            this.emit({ type: 'log', level: 'warn', message: `layer ${job.layer.digest} cannot be indexed, skipped: ${outcome.reason}` });
          for (const use of jobs.get(layerKey(job.layer, job.compression))!.uses) {
            this.emit({
              type: 'layer-done',
              platform: use.platform,
              result: layerResult(use.layer, { action: 'index', compression: job.compression }, outcome),
            });
          }
        },
      },
    );
  }

  /**
   * A zTOC blob is pushed as soon as it is built and its bytes released, so memory holds at most
   * `concurrency` zTOCs. An unreferenced blob is harmless: nothing points at it until the index is
   * pushed, and nothing is tagged before everything exists. A dry run keeps only the digest and size.
   */
  private async keepZtoc(job: LayerJob, outcome: LayerOutcome): Promise<LayerOutcome> {
    if (!outcome.indexable) return outcome;
    if (!this.options.dryRun) {
      // Into the cache first, even past the deadline: a retry after the deadline then starts from here.
      const stored = await this.storeInCache(job, outcome);
      checkDeadline(this.options.deadline, PUSH_MARGIN_MS, 'pushing'); // never write once time is up
      const descriptor = { mediaType: SOCI_ZTOC_MEDIA_TYPE, digest: outcome.summary.digest, size: outcome.summary.size };
      const signal = this.options.signal ? { signal: this.options.signal } : {};
      // Once in the cache, the blob is mounted from there where the registry can (one request instead of
      // a second upload of the same bytes); else, or when the mount is refused, uploaded.
      if (stored) await this.options.ztocCache!.place({ descriptor, bytes: outcome.bytes }, this.output, this.options.signal);
      else await this.output.push(descriptor, outcome.bytes, signal);
      this.emit({ type: 'push', what: 'ztoc', digest: descriptor.digest });
    }
    return { ...outcome, bytes: RELEASED };
  }

  private cacheKey(job: LayerJob): ZtocCacheKey {
    return {
      layerDigest: job.layer.digest,
      compression: job.compression,
      spanSize: this.options.spanSize,
      buildToolId: this.options.buildToolId,
    };
  }

  /** A cache failure is logged and counted, never fatal; an abort (deadline, interrupt) still stops the build. */
  private cacheFailure(what: string, job: LayerJob, err: unknown, signal: AbortSignal | undefined): void {
    if (signal?.aborted) throw signal.reason;
    this.cacheStats!.failures++;
    this.emit({
      type: 'log',
      level: 'warn',
      message: `zTOC cache ${this.options.ztocCache!.description}: ${what} for layer ${job.layer.digest} failed, going on without it: ${err instanceof Error ? err.message : String(err)}`,
    });
  }

  /** True when the zTOC is now in the cache. */
  private async storeInCache(job: LayerJob, outcome: LayerOutcome & { indexable: true }): Promise<boolean> {
    const cache = this.options.ztocCache;
    if (!cache) return false;
    try {
      await cache.store(this.cacheKey(job), outcome.bytes, outcome.summary, this.options.signal);
      this.cacheStats!.stored++;
      this.emit({ type: 'push', what: 'ztoc-cache', digest: outcome.summary.digest });
      return true;
    } catch (err) {
      this.cacheFailure('storing the zTOC', job, err, this.options.signal);
      return false;
    }
  }

  /**
   * A verified cache entry for the layer, placed in the output: the layer is then not read. What the index
   * needs besides the zTOC digest (the xattr verdict, prefetch spans) is derived from the cached zTOC
   * itself, exactly as from a fresh one, so the output is the same bytes as a build from scratch.
   */
  private async reuseZtoc(job: LayerJob, signal: AbortSignal): Promise<LayerOutcome | undefined> {
    const cache = this.options.ztocCache!;
    const stats = this.cacheStats!;
    const started = Date.now();
    const xattr = this.options.optimizations?.includes('xattr') ?? false;
    const paths = (this.options.prefetchFiles ?? []).map(cleanPrefetchPath);
    let lookup;
    try {
      // The TOC entries are decoded only for what reads them: the xattr verdict and prefetch files.
      lookup = await cache.lookup(this.cacheKey(job), job.layer.size, signal, { toc: xattr || paths.length > 0 });
    } catch (err) {
      this.cacheFailure('the lookup', job, err, signal);
      return undefined;
    }
    if ('miss' in lookup) {
      stats.misses++;
      if (lookup.miss === 'invalid') {
        stats.invalid++;
        this.emit({
          type: 'log',
          level: 'warn',
          message: `zTOC cache ${cache.description}: ignored an entry for layer ${job.layer.digest}, building it instead: ${lookup.reason}`,
        });
      }
      return undefined;
    }
    const { hit } = lookup;
    if (!this.options.dryRun) {
      checkDeadline(this.options.deadline, PUSH_MARGIN_MS, 'pushing');
      const how = await cache.place(hit, this.output, signal);
      this.emit({
        type: 'push',
        what: `ztoc (${how === 'copied' ? 'copied' : how === 'mounted' ? 'mounted' : 'already present'} from the cache)`,
        digest: hit.descriptor.digest,
      });
    }
    const { ztoc } = hit;
    stats.reused++;
    stats.bytesSaved += job.layer.size;
    return {
      indexable: true,
      bytes: RELEASED,
      summary: hit.summary,
      // Without the xattr optimisation the verdict is never read (imageIndex), nor are prefetch spans without paths.
      noXattrs: xattr && ztoc !== undefined && hasNoXattrs(ztoc.toc.length, (i) => ztoc.toc[i]!),
      prefetch: ztoc !== undefined ? findPrefetchSpans(ztoc, paths) : new Map(),
      durationMs: Date.now() - started,
      reused: true,
    };
  }

  /** The SOCI index of one image, or undefined when none of its layers got a zTOC. */
  private imageIndex(plan: ImagePlan, outcomes: Map<string, LayerOutcome>): { index: SociIndex; prefetch: Content[] } | undefined {
    const { options } = this;
    const xattr = options.optimizations?.includes('xattr') ?? false;
    const built = new Map<string, LayerOutcome & { indexable: true }>();
    const ztocs: Descriptor[] = [];
    for (const { layer, decision } of plan.layers) {
      const outcome = decision.action === 'index' ? outcomes.get(layerKey(layer, decision.compression)) : undefined;
      if (!outcome?.indexable) continue;
      built.set(layer.digest, outcome);
      ztocs.push(ztocDescriptor(layer, outcome.summary, options.spanSize, xattr && outcome.noXattrs));
    }
    const paths = (options.prefetchFiles ?? []).map(cleanPrefetchPath);
    const prefetch =
      paths.length === 0 ? [] : prefetchArtifacts(plan.image.manifest.layers ?? [], (layer) => built.get(layer.digest)?.prefetch, paths);
    if (ztocs.length + prefetch.length === 0) return undefined;
    const subject = options.indexVersion === 'v1' ? plan.image.descriptor : undefined;
    return {
      index: sociIndex(options.indexVersion, [...ztocs, ...prefetch.map((p) => p.descriptor)], options.buildToolId, subject),
      prefetch: prefetch.map((p) => ({ descriptor: p.descriptor, bytes: p.bytes, what: 'prefetch' })),
    };
  }

  private async build(source: SourceImage, plans: ImagePlan[], tags: OutputTags): Promise<BuildResult> {
    const { options } = this;
    const outcomes = await this.buildZtocs(plans);
    const indexes = plans.map((plan) => this.imageIndex(plan, outcomes));
    const layerResults = plans.map((plan) =>
      plan.layers.map(({ layer, decision }) =>
        layerResult(layer, decision, decision.action === 'index' ? outcomes.get(layerKey(layer, decision.compression)) : undefined),
      ),
    );
    // zTOC blobs were pushed as they were built (keepZtoc); what is left to push refers to them.
    const ztocs = [...outcomes.values()].filter((o): o is LayerOutcome & { indexable: true } => o.indexable);
    const ztocBytes = ztocs.reduce((sum, o) => sum + o.summary.size, 0);

    if (indexes.every((i) => i === undefined)) {
      const reasons = [
        ...new Set(
          layerResults
            .flat()
            .flatMap((l) =>
              (l.skipCode === SKIP_CODE.cannotBeIndexed || l.skipCode === SKIP_CODE.limitExceeded) && l.reason ? [l.reason] : [],
            ),
        ),
      ];
      return this.result({
        status: 'no-eligible-layers',
        message: `no layer could be indexed (${reasons.join('; ')})`,
        source: this.sourceFields(source),
        platforms: plans.map((p, i) => this.platformResult(p, layerResults[i]!)),
        ztocBytes,
      });
    }

    const blobs: Content[] = [
      ...indexes.flatMap((i) => i?.prefetch ?? []),
      {
        descriptor: { mediaType: MEDIA_TYPE_OCI_EMPTY, digest: EMPTY_JSON_CONFIG.digest, size: EMPTY_JSON_CONFIG.size },
        bytes: EMPTY_CONFIG_BYTES,
        what: 'config',
      },
    ];
    const sociManifests: Content[] = indexes.flatMap((i) =>
      i ? [{ descriptor: i.index.descriptor, bytes: i.index.bytes, what: 'soci-index' }] : [],
    );
    const bindings: Binding[] = plans.flatMap((plan, i) => {
      const index = indexes[i];
      return index
        ? [{ manifestDigest: plan.image.descriptor.digest, platform: plan.image.indexPlatform, index: index.index.descriptor }]
        : [];
    });
    const converted = options.indexVersion === 'v2' ? convertImage(source, bindings) : undefined;
    const platforms = plans.map((plan, i) =>
      this.platformResult(plan, layerResults[i]!, {
        ...(indexes[i] && { indexDigest: indexes[i].index.descriptor.digest }),
        ...(converted?.convertedDigests.has(plan.image.descriptor.digest) && {
          convertedManifestDigest: converted.convertedDigests.get(plan.image.descriptor.digest)!,
        }),
      }),
    );
    const outputDescriptor = converted ? converted.index.descriptor : bindings[0]!.index;
    const common = { source: this.sourceFields(source), platforms, ztocBytes };

    if (options.dryRun) {
      return this.result({
        ...common,
        status: 'created',
        message: 'dry run: everything built, nothing pushed or tagged',
        output: { digest: outputDescriptor.digest, mediaType: outputDescriptor.mediaType, tags: tags.tags },
      });
    }
    // Without an output tag, v2 output that already exists is recognised only now, by its digest.
    if (converted && tags.tags.length === 0 && (await this.output.exists(outputDescriptor))) {
      return this.result({
        ...common,
        status: 'already-indexed',
        message: 'already indexed',
        output: { digest: outputDescriptor.digest, mediaType: MEDIA_TYPE_OCI_INDEX, tags: [] },
      });
    }

    options.signal?.throwIfAborted();
    const stages = [blobs, sociManifests];
    if (converted) {
      stages.push(converted.manifests.map((m) => ({ descriptor: m.descriptor, bytes: m.bytes, what: 'image-manifest' })));
      stages.push([{ descriptor: converted.index.descriptor, bytes: converted.index.bytes, what: 'image-index' }]);
    }
    const copy = this.output === this.source ? [] : imageContent(source, options.indexVersion);
    await publish(
      this.source,
      this.output,
      { copy, stages },
      {
        concurrency: options.concurrency,
        deadline: options.deadline,
        signal: options.signal,
        emit: this.emit,
        onBytes: (n) => (this.bytesRead += n),
      },
    );

    // v2 tags derive from (or stand in for) the source tag: write none if a newer push took it meanwhile.
    // v1 indexes name their image by digest (subject, digest-derived ref name) and stay right.
    if (converted && tags.tags.length > 0 && source.tag !== undefined) {
      const moved = await sourceTagMoved(this.source, source.tag, source.root.digest);
      if (moved !== undefined) return this.result({ ...common, status: 'superseded', message: `superseded: ${moved}; nothing was tagged` });
    }
    const applied = converted ? await this.tagOutput(outputDescriptor, tags.tags) : await this.tagV1ForReferrers(bindings);
    const count = bindings.length;
    const summary = `SOCI index ${options.indexVersion} for ${count} platform${count === 1 ? '' : 's'} (${ztocs.length} zTOC${ztocs.length === 1 ? '' : 's'})`;
    const where =
      applied.length > 0
        ? `, tagged ${applied.join(', ')}`
        : converted
          ? `, untagged: ${tags.untagged ?? 'no output tag'}`
          : ', found through the referrers API';
    return this.result({
      ...common,
      status: 'created',
      message: `created ${summary}${where}`,
      output: { digest: outputDescriptor.digest, mediaType: converted ? MEDIA_TYPE_OCI_INDEX : MEDIA_TYPE_OCI_MANIFEST, tags: applied },
    });
  }

  private async tagOutput(output: Descriptor, tags: string[]): Promise<string[]> {
    for (const tag of tags) {
      checkDeadline(this.options.deadline, TAG_MARGIN_MS, `tagging ${tag}`);
      await this.output.tag(output, tag);
      this.emit({ type: 'tag', tag, digest: output.digest });
    }
    return tags;
  }

  /**
   * Where referrers are found only among tagged manifests (a layout's index.json), each v1 index gets a
   * ref name derived from its image manifest (a rebuild with other settings replaces it). Registries keep
   * referrers themselves (API or the fallback tag the client maintains): no tag there.
   */
  private async tagV1ForReferrers(bindings: Binding[]): Promise<string[]> {
    if (!this.output.referrersNeedTags) return [];
    const names: string[] = [];
    for (const binding of bindings) {
      const name = layoutV1RefName(binding.manifestDigest);
      names.push(...(await this.tagOutput(binding.index, [name])));
    }
    return names;
  }
}

const RELEASED = new Uint8Array(0);

/**
 * Builds and publishes the SOCI index of `reference` (a tag, `sha256:` digest, `tag@digest`, or '' for a
 * layout's only image) in `source`, into `output` (default: the source). Every failure is a SociError
 * whose kind says whether a retry can help.
 */
export async function buildSociIndex(
  source: Target,
  reference: string,
  options: BuildOptions,
  output: Target = source,
): Promise<BuildResult> {
  try {
    validateOptions(options);
    return await new Build(source, output, reference, options).run();
  } catch (err) {
    throw toSociError(err, options.signal);
  }
}

/**
 * What `buildSociIndex(source, reference, options)` would find, from manifests alone (no layer read,
 * nothing written): whether the output these settings make is already there. `sync` plans with it.
 */
export async function checkSociIndex(source: Target, reference: string, options: BuildOptions): Promise<IndexCheck> {
  try {
    validateOptions(options);
    return await new Build(source, source, reference, options).check();
  } catch (err) {
    throw toSociError(err, options.signal);
  }
}
