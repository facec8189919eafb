// Messages between the layer pool (main thread) and a layer worker.
import type { LayerIndexOptions, LayerIndexResult } from './layer-index.ts';

export type ToWorker =
  | { type: 'start'; id: number; options: LayerIndexOptions }
  | { type: 'chunk'; id: number; data: ArrayBuffer }
  | { type: 'end'; id: number }
  | { type: 'abort'; id: number };

export type FromWorker =
  /** `buffer` is the consumed chunk's memory, handed back for reuse. */
  | { type: 'ack'; id: number; bytes: number; buffer: ArrayBuffer }
  | { type: 'done'; id: number; result: LayerIndexResult }
  | { type: 'failed'; id: number; message: string; name?: string };
