// A slow, obviously-correct reference for soci's checkpoint rule (spec 3.2): pako's port of zlib's
// inflate, driven exactly like soci's generate_zinfo (windowBits 47, Z_BLOCK, data_type), over a whole
// file in memory. It shares no code with the native-zlib engine, so tests can compare the two on any
// gzip stream, not only the golden ones.

import { inflate, inflateInit2 } from 'pako/lib/zlib/inflate.js';
import ZStream from 'pako/lib/zlib/zstream.js';

export interface ReferenceCheckpoint {
  in: number;
  out: number;
  bits: number;
}

const Z_BLOCK = 5;
const Z_STREAM_END = 1;

export function referenceCheckpoints(file: Uint8Array, span: number): ReferenceCheckpoint[] {
  const checkpoints: ReferenceCheckpoint[] = [];
  let output = new Uint8Array(1 << 20);
  let totout = 0;
  let last = 0;
  let totin = 0;
  let strm = fresh(file, 0);
  for (;;) {
    if (output.length - totout < 1 << 16) {
      const grown = new Uint8Array(output.length * 2);
      grown.set(output.subarray(0, totout));
      output = grown;
    }
    strm.output = output;
    strm.next_out = totout;
    strm.avail_out = Math.min(output.length - totout, 1 << 16);
    const ret = inflate(strm, Z_BLOCK);
    totin = strm.next_in;
    totout = strm.next_out;
    if (ret < 0 && ret !== -5) throw new Error(`reference inflate failed: ${strm.msg}`);
    if (ret === Z_STREAM_END) {
      if (totin >= file.length) break;
      // Fresh state instead of inflateReset (pako 2.1's reset keeps a broken window).
      strm = fresh(file, totin);
      continue;
    }
    if (ret === -5 && strm.avail_in === 0) throw new Error('reference inflate: truncated input');
    const dt = strm.data_type;
    if (dt & 128 && !(dt & 64) && (totout === 0 || totout - last > span)) {
      checkpoints.push({ in: totin, out: totout, bits: dt & 7 });
      last = totout;
    }
  }
  return checkpoints;
}

function fresh(file: Uint8Array, at: number): ZStream {
  const strm = new ZStream();
  if (inflateInit2(strm, 47) !== 0) throw new Error('reference inflate: init failed');
  strm.input = file;
  strm.next_in = at;
  strm.avail_in = file.length - at;
  return strm;
}
