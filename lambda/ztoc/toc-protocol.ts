// Messages between the zTOC builder (the inflating thread) and its TOC worker, which parses the tar
// stream, checks each gzip member's CRC-32 and serializes the zTOC.
import type { ZtocToSerialize } from './codec.ts';
import type { ZtocLimits } from './limits.ts';

/** Everything of a zTOC but its TOC, which the worker has (checkpoints possibly as parts). */
export type ZtocWithoutToc = Omit<ZtocToSerialize, 'toc' | 'uncompressedArchiveSize'>;

export type ToTocWorker =
  | { type: 'start'; limits: ZtocLimits }
  /** `layerBytes`: compressed bytes of the layer read when the batch was sent (for the TOC limit). */
  | { type: 'data'; buffer: ArrayBuffer; length: number; layerBytes: number }
  | { type: 'member-end'; storedCrc: number; endOffset: number }
  | { type: 'finish'; rest: ZtocWithoutToc };

export type FromTocWorker =
  | { type: 'ack'; bytes: number; buffer: ArrayBuffer }
  | { type: 'failed'; code: string; message: string; limit?: string }
  | { type: 'done'; bytes: Uint8Array; entries: number; uncompressedArchiveSize: number };
