// gzip: zran checkpoints (compressed offset, bit offset and 32 KiB window at block boundaries, one per
// span), span digests over the compressed bytes between checkpoints; extraction inflates from a checkpoint.
import { createHash } from 'node:crypto';
import { decodeGzipCheckpoints, gzipCheckpointOutputs, gzipCheckpointParts } from '../codec.ts';
import { indexGzip } from '../gzip-index.ts';
import { GoTarReader } from '../tar-reader.ts';
import { TocOffload } from '../toc-offload.ts';
import { checkGzipHeader, gunzipInto } from '../verify/passes.ts';
import { planGzip } from '../verify/plan.ts';
import { type BuildContext, type Compression, type Serialized, serializedFrom } from './algorithm.ts';

const TOC_WORKER_MIN_SIZE = 16 << 20;

export const gzip: Compression = {
  name: 'gzip',
  fbsCode: 1,
  description: 'gzip',
  magic: { bytes: [0x1f, 0x8b], mismatch: 'bad-gzip' },
  mediaTypeCompressions: ['gzip'],
  build: buildGzip,
  spanSize: (checkpoints) => decodeGzipCheckpoints(checkpoints).spanSize,
  spanLocator(checkpoints) {
    const outs = gzipCheckpointOutputs(checkpoints);
    return (offset) => {
      let span = 0;
      while (span + 1 < outs.length && outs[span + 1]! <= offset) span++;
      return span;
    };
  },
  describeCheckpoints(blob) {
    const { spanSize, checkpoints } = decodeGzipCheckpoints(blob);
    return {
      spanSize,
      checkpoints: checkpoints.map((c) => ({ in: c.in, out: c.out, bits: c.bits, windowSha256: sha256Hex(c.window) })),
    };
  },
  verify: {
    plan: (ztoc, problems) => planGzip(ztoc, problems),
    checkPrefix: (header, plan, problems) => checkGzipHeader(header, plan.checkpoints[0]!, problems),
    decompress: (layer, problems, sink) => gunzipInto(layer, problems, sink),
  },
};

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function buildGzip(
  stream: AsyncIterable<Uint8Array>,
  { spanSize, header, options, limits, bytesRead, tarOptions }: BuildContext,
): Promise<Serialized> {
  // The tar reader, CRC checks and serialization run on a second thread when asked and available.
  const useWorker = options.tocWorker === true && (options.sizeHint === undefined || options.sizeHint >= TOC_WORKER_MIN_SIZE);
  const offload = useWorker ? TocOffload.start(limits, bytesRead) : undefined;
  const tar = offload ? undefined : new GoTarReader(tarOptions);
  try {
    const r = await indexGzip(stream, offload ? (chunk) => offload.push(chunk) : (chunk) => tar!.push(chunk), {
      ...options.gzip,
      limits,
      spanSize,
      ...(offload ? { onMemberEnd: (crc: number, end: number) => offload.memberEnd(crc, end) } : {}),
    });
    // The windows go into the FlatBuffer straight from the checkpoints: one copy, no intermediate blob.
    const checkpoints = gzipCheckpointParts(spanSize, r.checkpoints);
    const rest = {
      ...header,
      compressedArchiveSize: r.compressedSize,
      maxSpanId: r.spanDigests.length - 1,
      spanDigests: r.spanDigests,
      checkpoints,
    };
    if (!offload) {
      tar!.end();
      return serializedFrom({ ...rest, toc: tar!.toc, uncompressedArchiveSize: tar!.archiveSize });
    }
    const done = await offload.finish(rest); // transfers the parts to the worker
    return {
      bytes: done.bytes,
      compression: header.compressionAlgorithm,
      entries: done.entries,
      spans: rest.maxSpanId + 1,
      compressedSize: r.compressedSize,
      uncompressedSize: done.uncompressedArchiveSize,
    };
  } finally {
    await offload?.close();
  }
}
