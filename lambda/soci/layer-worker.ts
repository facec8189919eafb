// Worker side of the layer pool: receives a layer's bytes as transferred chunks, indexes them with
// indexLayerStream and posts the result back (zTOC bytes transferred, not copied). One job at a time.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { indexLayerStream } from './layer-index.ts';
import type { FromWorker, ToWorker } from './layer-worker-protocol.ts';

const port = parentPort;
if (!port) throw new Error('layer-worker.ts must run in a worker thread');

// Between layers the worker drops the finished layer's TOC columns, windows and buffers at once. Left to
// V8 they can sit in old space until a major GC late in the next layer, on top of that layer's peak: on
// four 240 MB layers at concurrency 2 collecting here lowered peak RSS by ~35 MB in some runs (the GC
// itself takes ~10 ms; see shapes.ts for why the optimized code survives it).
const collectGarbage = exposeGc();

function exposeGc(): (() => void) | undefined {
  try {
    setFlagsFromString('--expose-gc'); // V8 only hands gc() to contexts created after this
    return runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}

let queue: Uint8Array[] = [];
let ended = false;
let aborted = false;
let wake: (() => void) | undefined;

async function* chunks(id: number): AsyncGenerator<Uint8Array> {
  for (;;) {
    if (aborted) throw new Error('aborted');
    const next = queue.shift();
    if (next) {
      yield next;
      // The consumer asks for the next chunk only when it is done with this one (the zTOC builder copies
      // what it keeps): hand the memory back to the pool for reuse.
      port!.postMessage({ type: 'ack', id, bytes: next.length, buffer: next.buffer as ArrayBuffer } satisfies FromWorker, [
        next.buffer as ArrayBuffer,
      ]);
      continue;
    }
    if (ended) return;
    await new Promise<void>((resolve) => (wake = resolve));
  }
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'start': {
      queue = [];
      ended = false;
      aborted = false;
      indexLayerStream(chunks(message.id), message.options)
        .then(
          (result) => {
            const transfer = result.indexable ? [result.bytes.buffer as ArrayBuffer] : [];
            port.postMessage({ type: 'done', id: message.id, result } satisfies FromWorker, transfer);
          },
          (err: unknown) =>
            port.postMessage({
              type: 'failed',
              id: message.id,
              message: err instanceof Error ? err.message : String(err),
              name: err instanceof Error ? err.name : undefined,
            } satisfies FromWorker),
        )
        .finally(() => collectGarbage?.());
      break;
    }
    case 'chunk':
      queue.push(new Uint8Array(message.data));
      break;
    case 'end':
      ended = true;
      break;
    case 'abort':
      aborted = true;
      break;
  }
  wake?.();
  wake = undefined;
});
