// The TOC worker: consumes the uncompressed tar stream produced by the inflating thread, runs the Go-tar
// reader over it, checks each gzip member's CRC-32, and serializes the finished zTOC. Moving this work off
// the inflating thread lets one layer use two cores. One build per worker.

import { parentPort } from 'node:worker_threads';
import zlib from 'node:zlib';
import { serializeZtoc } from './codec.ts';
import { DEFAULT_LIMITS, tocBytesAllowed } from './limits.ts';
import { GoTarReader } from './tar-reader.ts';
import type { FromTocWorker, ToTocWorker } from './toc-protocol.ts';
import { ZtocError } from './types.ts';

const port = parentPort;
if (!port) throw new Error('toc-worker.ts must run in a worker thread');

let limits = DEFAULT_LIMITS;
let layerBytes = 0;
let tar = new GoTarReader({ maxPaxRecords: limits.paxRecordsPerEntry, tocBytesAllowed: () => tocBytesAllowed(limits, layerBytes) });
let crc = 0;
let failed = false;

function fail(err: unknown): void {
  failed = true;
  const code = err instanceof ZtocError ? err.code : 'bad-tar';
  const limit = err instanceof ZtocError ? err.limit : undefined;
  port!.postMessage({
    type: 'failed',
    code,
    message: err instanceof Error ? err.message : String(err),
    ...(limit && { limit }),
  } satisfies FromTocWorker);
}

port.on('message', (message: ToTocWorker) => {
  if (failed) return;
  try {
    switch (message.type) {
      case 'start':
        limits = message.limits;
        tar = new GoTarReader({ maxPaxRecords: limits.paxRecordsPerEntry, tocBytesAllowed: () => tocBytesAllowed(limits, layerBytes) });
        break;
      case 'data': {
        layerBytes = message.layerBytes;
        const chunk = new Uint8Array(message.buffer, 0, message.length);
        crc = zlib.crc32(chunk, crc);
        tar.push(chunk);
        // Hand the buffer back for reuse: no allocation per batch on either thread.
        port.postMessage({ type: 'ack', bytes: message.length, buffer: message.buffer } satisfies FromTocWorker, [message.buffer]);
        break;
      }
      case 'member-end':
        if (message.storedCrc !== crc >>> 0) {
          throw new ZtocError('bad-gzip', `gzip CRC mismatch in the member ending at offset ${message.endOffset}`);
        }
        crc = 0;
        break;
      case 'finish': {
        tar.end();
        const bytes = serializeZtoc({ ...message.rest, toc: tar.toc, uncompressedArchiveSize: tar.archiveSize });
        const done: FromTocWorker = { type: 'done', bytes, entries: tar.toc.length, uncompressedArchiveSize: tar.archiveSize };
        port.postMessage(done, [bytes.buffer as ArrayBuffer]);
        break;
      }
    }
  } catch (err) {
    fail(err);
  }
});
