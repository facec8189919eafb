// Indexes layers on worker threads. A zTOC build is CPU-bound and synchronous (native inflate), so
// layers "in flight" on one thread only interleave; workers let `concurrency` layers use that many cores
// while the main thread does the network I/O and digest checks. Chunks are copied once and transferred;
// at most MAX_IN_FLIGHT bytes wait in a worker's queue, so memory stays bounded however fast the source is.
// When workers cannot start (no layer-worker.mjs beside the code) layers are indexed on this thread.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ResourceLimits, Worker } from 'node:worker_threads';
import { SociIndexerError } from '../oci/errors.ts';
import { startWorker } from '../ztoc/worker-options.ts';
import { indexLayerStream, type LayerIndexOptions, type LayerIndexResult } from './layer-index.ts';
import type { FromWorker, ToWorker } from './layer-worker-protocol.ts';

const MAX_IN_FLIGHT = 4 << 20;
const BATCH = 1 << 20;
const WORKER_URL = new URL('./layer-worker.mjs', import.meta.url);

/**
 * A layer that made the engine fail outside its own input checks (a RangeError, a FlatBuffers size error)
 * or killed its worker (out of memory): the same layer does it again, so it is never retried.
 */
export class LayerIndexError extends SociIndexerError {
  override readonly name = 'LayerIndexError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('permanent', message, options);
  }
}

interface Job {
  id: number;
  onMessage: (message: FromWorker) => void;
  onFailure: (error: Error) => void;
}

class LayerWorker {
  readonly worker: Worker;
  job: Job | undefined;

  constructor(limits?: ResourceLimits) {
    this.worker = startWorker(WORKER_URL, limits);
    this.worker.on('message', (message: FromWorker) => {
      if (this.job && message.id === this.job.id) this.job.onMessage(message);
    });
    this.worker.on('error', (err) => {
      const outOfMemory = (err as NodeJS.ErrnoException).code === 'ERR_WORKER_OUT_OF_MEMORY';
      this.job?.onFailure(
        new LayerIndexError(
          outOfMemory
            ? `layer worker ran out of memory (${err.message.split('\n')[0]})`
            : `layer worker failed: ${err.message.split('\n')[0]}`,
          { cause: err },
        ),
      );
    });
    this.worker.on('exit', (code) => this.job?.onFailure(new LayerIndexError(`layer worker exited with code ${code}`)));
  }

  post(message: ToWorker, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(message, transfer);
  }
}

export class LayerPool {
  private readonly idle: LayerWorker[] = [];
  private readonly all = new Set<LayerWorker>();
  private readonly waiting: Array<(w: LayerWorker) => void> = [];
  private nextId = 1;
  private workersUnavailable: Error | undefined;
  private fallbackReported = false;

  /**
   * `onFallback` hears once why layers run on the main thread, if workers cannot be started; `limits`
   * adds V8 resource limits to the workers' own (tests use it to make one run out of memory).
   */
  constructor(
    private readonly size: number,
    private readonly onFallback?: (reason: string) => void,
    private readonly limits?: ResourceLimits,
  ) {
    if (!existsSync(fileURLToPath(WORKER_URL))) {
      this.workersUnavailable = new Error(`${fileURLToPath(WORKER_URL)} is missing: layers are indexed on the main thread`);
    }
  }

  /** Why layers run on the main thread, when workers could not be started. */
  get fallbackReason(): string | undefined {
    return this.workersUnavailable?.message;
  }

  async index(stream: AsyncIterable<Uint8Array>, options: LayerIndexOptions, signal?: AbortSignal): Promise<LayerIndexResult> {
    const worker = this.workersUnavailable ? undefined : await this.acquire();
    if (!worker) {
      if (!this.fallbackReported) this.onFallback?.(this.fallbackReason!);
      this.fallbackReported = true;
      return indexLayerStream(stream, options);
    }
    try {
      return await this.run(worker, stream, options, signal);
    } finally {
      this.release(worker);
    }
  }

  async close(): Promise<void> {
    const workers = [...this.all];
    this.all.clear();
    this.idle.length = 0;
    await Promise.all(workers.map((w) => w.worker.terminate()));
  }

  private async acquire(): Promise<LayerWorker | undefined> {
    const ready = this.idle.pop();
    if (ready) return ready;
    if (this.all.size < this.size) {
      try {
        const w = new LayerWorker(this.limits);
        this.all.add(w);
        return w;
      } catch (err) {
        this.workersUnavailable = new Error(
          `layer workers cannot start (${(err as Error).message}): layers are indexed on the main thread`,
        );
        return undefined;
      }
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(worker: LayerWorker): void {
    worker.job = undefined;
    if (!this.all.has(worker)) return;
    const waiter = this.waiting.shift();
    if (waiter) waiter(worker);
    else this.idle.push(worker);
  }

  private async run(
    worker: LayerWorker,
    stream: AsyncIterable<Uint8Array>,
    options: LayerIndexOptions,
    signal?: AbortSignal,
  ): Promise<LayerIndexResult> {
    const id = this.nextId++;
    let inFlight = 0;
    let drained: (() => void) | undefined;
    let settle!: { resolve: (r: LayerIndexResult) => void; reject: (e: Error) => void };
    let finished = false;
    const result = new Promise<LayerIndexResult>((resolve, reject) => (settle = { resolve, reject }));
    result.then(
      () => (finished = true),
      () => (finished = true),
    );
    const free: ArrayBuffer[] = []; // batches handed back by the worker
    worker.job = {
      id,
      onMessage: (message) => {
        if (message.type === 'ack') {
          inFlight -= message.bytes;
          if (message.buffer.byteLength === BATCH) free.push(message.buffer);
          if (inFlight <= MAX_IN_FLIGHT / 2) drained?.();
        } else if (message.type === 'done') {
          settle.resolve(message.result);
          drained?.();
        } else {
          settle.reject(
            new LayerIndexError(`${message.name === undefined || message.name === 'Error' ? '' : `${message.name}: `}${message.message}`),
          );
          drained?.();
        }
      },
      onFailure: (error) => {
        // A dead worker cannot be reused.
        this.all.delete(worker);
        settle.reject(error);
        drained?.();
      },
    };
    worker.post({ type: 'start', id, options });

    const iterator = stream[Symbol.asyncIterator]();
    // Network chunks are small (tens of KiB); batching them into BATCH-sized transfers keeps the number
    // of messages (each costs both threads) low. The batch is a private copy: the source may reuse its memory.
    let batch = new Uint8Array(BATCH);
    let used = 0;
    const send = () => {
      if (used === 0) return;
      const data = used === BATCH ? batch.buffer : batch.buffer.slice(0, used);
      inFlight += used;
      worker.post({ type: 'chunk', id, data }, [data]);
      batch = new Uint8Array(free.pop() ?? new ArrayBuffer(BATCH));
      used = 0;
    };
    try {
      for (;;) {
        while (inFlight > MAX_IN_FLIGHT && !finished) await new Promise<void>((resolve) => (drained = resolve));
        if (finished) break; // the worker stopped early (e.g. not a tar): stop reading
        signal?.throwIfAborted();
        const next = await iterator.next();
        if (next.done) {
          send();
          worker.post({ type: 'end', id });
          break;
        }
        for (let at = 0; at < next.value.length; ) {
          const n = Math.min(next.value.length - at, BATCH - used);
          batch.set(next.value.subarray(at, at + n), used);
          used += n;
          at += n;
          if (used === BATCH) send();
        }
      }
    } catch (err) {
      worker.post({ type: 'abort', id });
      await result.catch(() => undefined);
      throw err;
    } finally {
      await iterator.return?.();
    }
    return result;
  }
}
