// Node's own zlib decompressing a gzip file to nowhere, 128 KiB chunks: the bench's Node baseline.
import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';

let out = 0;
await pipeline(
  createReadStream(process.argv[2], { highWaterMark: 1 << 20 }),
  zlib.createGunzip({ chunkSize: 128 * 1024 }),
  new Writable({ write(chunk, _enc, cb) { out += chunk.length; cb(); } }),
);
console.log(`${out} bytes`);
