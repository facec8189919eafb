// Starting the worker threads we use (layer workers, TOC workers).
import { type ResourceLimits, Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Workers inherit the process's Node options except those meant for the main thread only: the entry
 * script's `--input-type`, and young-generation sizing (the main thread may run with a small one to save
 * memory; the workers' hot loops need their own, set here).
 */
export function workerOptions(): WorkerOptions {
  return {
    execArgv: process.execArgv.filter((a) => !a.startsWith('--input-type') && !a.startsWith('--max-semi-space-size')),
    // Their garbage is short-lived (batches, header parsing): a small young generation keeps them lean.
    resourceLimits: { maxYoungGenerationSizeMb: 4 },
  };
}

/**
 * Starts a worker with workerOptions(). An explicit execArgv is validated, and a worker refuses V8 and
 * process-wide flags (`node --max-old-space-size=8192 ...`, `--v8-pool-size`), which already apply to the
 * whole process anyway: those are dropped instead of failing the start, which would silently leave all
 * the work to one thread.
 */
export function startWorker(url: URL, limits: ResourceLimits = {}): Worker {
  const base = workerOptions();
  const options = { ...base, resourceLimits: { ...base.resourceLimits, ...limits } };
  try {
    return new Worker(url, options);
  } catch (err) {
    const refused = refusedFlags(err);
    if (!refused) throw err;
    return new Worker(url, { ...options, execArgv: options.execArgv!.filter((a) => !refused.has(a)) });
  }
}

function refusedFlags(err: unknown): Set<string> | undefined {
  if ((err as { code?: unknown }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') return undefined;
  const listed = /flags: (.*)$/.exec(String((err as Error).message))?.[1];
  return listed ? new Set(listed.split(', ')) : undefined;
}
