// The inflating thread's side of the TOC worker: batches the uncompressed output into transferable
// buffers (one copy), applies backpressure, and relays the worker's verdicts. Falls back (start()
// returns undefined) when the worker module is not beside this code, e.g. in a bundle that lacks it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import type { ZtocLimits } from './limits.ts';
import type { FromTocWorker, ToTocWorker, ZtocWithoutToc } from './toc-protocol.ts';
import { ZtocError } from './types.ts';
import { startWorker } from './worker-options.ts';

const WORKER_URL = new URL('./toc-worker.mjs', import.meta.url);
const BATCH = 1 << 20;
const MAX_IN_FLIGHT = 4 << 20;

export class TocOffload {
  private batch = new Uint8Array(BATCH);
  private readonly free: ArrayBuffer[] = [];
  private used = 0;
  private inFlight = 0;
  private failure: ZtocError | undefined;
  private drained: (() => void) | undefined;
  private finished: ((m: Extract<FromTocWorker, { type: 'done' }>) => void) | undefined;

  private constructor(
    private readonly worker: Worker,
    /** Compressed bytes of the layer read so far. */
    private readonly layerBytes: () => number,
  ) {
    worker.on('message', (m: FromTocWorker) => {
      if (m.type === 'ack') {
        this.inFlight -= m.bytes;
        this.free.push(m.buffer);
      } else if (m.type === 'failed') this.failure = new ZtocError(m.code as ZtocError['code'], m.message, m.limit);
      else this.finished?.(m);
      if (this.failure || this.inFlight <= MAX_IN_FLIGHT / 2) this.wake();
    });
    worker.on('error', (err) => {
      this.failure ??= new ZtocError('bad-tar', `TOC worker failed: ${err.message}`);
      this.wake();
    });
  }

  static start(limits: ZtocLimits, layerBytes: () => number): TocOffload | undefined {
    if (!existsSync(fileURLToPath(WORKER_URL))) return undefined;
    const offload = new TocOffload(startWorker(WORKER_URL), layerBytes);
    offload.post({ type: 'start', limits });
    return offload;
  }

  private wake(): void {
    const d = this.drained;
    this.drained = undefined;
    d?.();
  }

  private post(message: ToTocWorker, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(message, transfer);
  }

  private flush(): void {
    if (this.used === 0) return;
    this.inFlight += this.used;
    this.post({ type: 'data', buffer: this.batch.buffer as ArrayBuffer, length: this.used, layerBytes: this.layerBytes() }, [
      this.batch.buffer as ArrayBuffer,
    ]);
    this.batch = new Uint8Array(this.free.pop() ?? new ArrayBuffer(BATCH));
    this.used = 0;
  }

  /** Takes the next uncompressed bytes; returns a promise when the worker is too far behind. */
  push(chunk: Uint8Array): void | Promise<void> {
    if (this.failure) throw this.failure;
    let at = 0;
    while (at < chunk.length) {
      const n = Math.min(chunk.length - at, BATCH - this.used);
      this.batch.set(chunk.subarray(at, at + n), this.used);
      this.used += n;
      at += n;
      if (this.used === BATCH) this.flush();
    }
    if (this.inFlight > MAX_IN_FLIGHT) return this.waitForWorker();
  }

  private async waitForWorker(): Promise<void> {
    while (this.inFlight > MAX_IN_FLIGHT && !this.failure) await new Promise<void>((resolve) => (this.drained = resolve));
    if (this.failure) throw this.failure;
  }

  /** A gzip member ended: the worker checks the CRC-32 of everything since the previous member. */
  memberEnd(storedCrc: number, endOffset: number): void {
    this.flush(); // batches never straddle members
    this.post({ type: 'member-end', storedCrc, endOffset });
  }

  /** Sends the rest of the zTOC; resolves with the serialized zTOC once the worker has parsed everything. */
  async finish(rest: ZtocWithoutToc): Promise<{ bytes: Uint8Array; entries: number; uncompressedArchiveSize: number }> {
    this.flush();
    const done = new Promise<Extract<FromTocWorker, { type: 'done' }>>((resolve) => (this.finished = resolve));
    const parts = rest.checkpoints instanceof Uint8Array ? [rest.checkpoints] : rest.checkpoints;
    const buffers = [...new Set(parts.map((p) => p.buffer as ArrayBuffer))]; // moved, not copied
    this.post({ type: 'finish', rest }, buffers);
    for (;;) {
      const outcome = await Promise.race([done, new Promise<undefined>((resolve) => (this.drained = () => resolve(undefined)))]);
      if (this.failure) throw this.failure;
      if (outcome) return outcome;
    }
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
