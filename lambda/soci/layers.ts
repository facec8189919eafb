// Builds the zTOCs of the selected layers: each distinct layer (by digest and compression) is streamed
// from the source exactly once, even when several platforms share it, with at most `concurrency` layers
// in flight. What the index needs later is kept (zTOC bytes, the xattr verdict, prefetch matches); the
// zTOC model itself is dropped as soon as a layer is done.
import type { Descriptor, Target } from '../oci/target.ts';
import type { CompressionAlgorithm } from '../ztoc/types.ts';
import type { LayerIndexResult } from './layer-index.ts';
import { LayerPool } from './layer-pool.ts';
import { mapPool } from './pool.ts';
import type { BuildEvent } from './types.ts';

const PROGRESS_INTERVAL_MS = 250;

export interface LayerJob {
  layer: Descriptor;
  compression: CompressionAlgorithm;
  /** The first platform that uses the layer (for events). */
  platform: string;
}

/** What indexing one layer gave (see LayerIndexResult), how long it took, and whether the zTOC came from the cache. */
export type LayerOutcome = LayerIndexResult & { durationMs: number; reused?: boolean };

export function layerKey(layer: Descriptor, compression: string): string {
  return `${layer.digest} ${compression}`;
}

export interface BuildLayersOptions {
  spanSize: number;
  buildToolId: string;
  concurrency: number;
  prefetchPaths: string[];
  signal?: AbortSignal;
  emit: (event: BuildEvent) => void;
  /** Compressed bytes received from the source, for the totals. */
  onBytes: (n: number) => void;
  /** Called as each layer finishes, in completion order. */
  onDone: (job: LayerJob, outcome: LayerOutcome) => void;
  /**
   * Takes a finished zTOC before `onDone` (e.g. pushes it) and returns the outcome to keep: releasing
   * the bytes here keeps at most `concurrency` zTOCs in memory instead of all of them.
   */
  keep?: (job: LayerJob, outcome: LayerOutcome) => Promise<LayerOutcome>;
  /** Asked before a layer is read: an outcome (a cached zTOC, already placed) means the layer is not read. */
  reuse?: (job: LayerJob, signal: AbortSignal) => Promise<LayerOutcome | undefined>;
}

async function buildOne(
  source: Target,
  job: LayerJob,
  options: BuildLayersOptions,
  pool: LayerPool,
  signal: AbortSignal,
): Promise<LayerOutcome> {
  const { layer, platform } = job;
  const started = Date.now();
  options.emit({ type: 'layer-start', platform, layer: layer.digest, size: layer.size });
  let bytesRead = 0;
  let lastProgress = started;
  const stream = await source.fetch(layer, {
    signal,
    onBytes: (n) => {
      bytesRead += n;
      options.onBytes(n);
      const now = Date.now();
      if (now - lastProgress >= PROGRESS_INTERVAL_MS) {
        lastProgress = now;
        options.emit({ type: 'layer-progress', platform, layer: layer.digest, bytesRead, size: layer.size });
      }
    },
  });
  // The build may stop early (not gzip, bad tar): closing the source here releases its file or connection.
  const iterator = stream[Symbol.asyncIterator]();
  let outcome;
  try {
    outcome = await pool.index(
      { [Symbol.asyncIterator]: () => iterator },
      {
        spanSize: options.spanSize,
        compression: job.compression,
        buildToolId: options.buildToolId,
        prefetchPaths: options.prefetchPaths,
        sizeHint: layer.size,
      },
      signal,
    );
  } finally {
    await iterator.return?.();
  }
  return { ...outcome, durationMs: Date.now() - started };
}

/** Cache lookups in flight at once, at least: each is a few small requests and one zTOC download. */
const MIN_LOOKUP_CONCURRENCY = 4;

/** Builds every job's zTOC; the result is keyed by `layerKey`. I/O failures abort the whole run. */
export async function buildLayerZtocs(source: Target, jobs: LayerJob[], options: BuildLayersOptions): Promise<Map<string, LayerOutcome>> {
  const pool = new LayerPool(Math.max(1, Math.min(options.concurrency, jobs.length)), (reason) =>
    options.emit({ type: 'log', level: 'warn', message: reason }),
  );
  const build = async (job: LayerJob, signal: AbortSignal): Promise<LayerOutcome> => {
    const built = await buildOne(source, job, options, pool, signal);
    const outcome = options.keep ? await options.keep(job, built) : built;
    options.onDone(job, outcome);
    return outcome;
  };
  let outcomes: LayerOutcome[];
  try {
    outcomes = options.reuse
      ? await lookupThenBuild(jobs, options, options.reuse, build)
      : await mapPool(jobs, options.concurrency, (job, _i, signal) => build(job, signal), options.signal);
  } finally {
    await pool.close();
  }
  return new Map(jobs.map((job, i) => [layerKey(job.layer, job.compression), outcomes[i]!]));
}

/**
 * With a cache: every lookup at once (several in flight), and each miss queued for building as soon as
 * its own lookup answers, so a hit never takes a turn of the (CPU-bound) builds and a layer to build
 * does not wait for the other layers' zTOC downloads. At most `concurrency` builds run; the first
 * failure (a lookup's or a build's) aborts the rest and is the one rethrown.
 */
async function lookupThenBuild(
  jobs: LayerJob[],
  options: BuildLayersOptions,
  reuse: NonNullable<BuildLayersOptions['reuse']>,
  build: (job: LayerJob, signal: AbortSignal) => Promise<LayerOutcome>,
): Promise<LayerOutcome[]> {
  const controller = new AbortController();
  const onParentAbort = () => controller.abort(options.signal?.reason);
  if (options.signal?.aborted) onParentAbort();
  else options.signal?.addEventListener('abort', onParentAbort, { once: true });
  let failure: { error: unknown } | undefined;
  const fail = (error: unknown) => {
    if (failure === undefined) {
      failure = { error };
      controller.abort(error);
    }
  };
  const outcomes = new Array<LayerOutcome>(jobs.length);
  const queue: number[] = []; // misses in the order their lookups answered
  let looking = jobs.length;
  let wake: (() => void) | undefined;
  const woken = () => {
    wake?.();
    wake = undefined;
  };
  const lookups = mapPool(
    jobs,
    Math.max(options.concurrency, MIN_LOOKUP_CONCURRENCY),
    async (job, i, signal) => {
      try {
        const hit = await reuse(job, signal);
        if (hit) {
          outcomes[i] = hit;
          options.onDone(job, hit);
        } else queue.push(i);
      } finally {
        looking--;
        woken();
      }
    },
    controller.signal,
  ).catch(fail);
  const builder = async (): Promise<void> => {
    while (failure === undefined && !controller.signal.aborted) {
      const i = queue.shift();
      if (i === undefined) {
        if (looking === 0) return;
        await new Promise<void>((resolve) => {
          const previous = wake;
          wake = () => {
            previous?.();
            resolve();
          };
        });
        continue;
      }
      try {
        outcomes[i] = await build(jobs[i]!, controller.signal);
      } catch (error) {
        fail(error);
      }
    }
  };
  const onAbort = () => woken();
  controller.signal.addEventListener('abort', onAbort, { once: true });
  try {
    await Promise.all([lookups, ...Array.from({ length: Math.max(1, Math.min(options.concurrency, jobs.length)) }, builder)]);
  } finally {
    controller.signal.removeEventListener('abort', onAbort);
    options.signal?.removeEventListener('abort', onParentAbort);
  }
  if (failure !== undefined) throw failure.error;
  options.signal?.throwIfAborted();
  return outcomes;
}
