// Options shared by every worker thread we start (layer workers, TOC workers).
import type { WorkerOptions } from 'node:worker_threads';

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
