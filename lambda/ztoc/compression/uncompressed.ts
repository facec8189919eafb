// Uncompressed (a plain tar): spans are fixed slices of the layer (docs/format.md §3.5), the checkpoint
// blob is a TarZinfo FlatBuffer (span size and layer size); a file is a slice of the layer itself.
import { createHash } from 'node:crypto';
import { decodeTarZinfo, encodeTarZinfo } from '../codec.ts';
import { GoTarReader } from '../tar-reader.ts';
import { planUncompressed } from '../verify/plan.ts';
import { type BuildContext, type Compression, type Serialized, serializedFrom } from './algorithm.ts';

export const uncompressed: Compression = {
  name: 'uncompressed',
  fbsCode: 2,
  description: 'uncompressed tar',
  // No magic: whatever no other entry claims is read as a tar (a bad one fails as `bad-tar`).
  // Docker's `rootfs.diff.tar` ("unknown" to containerd) is read as a tar too, as upstream does.
  mediaTypeCompressions: ['uncompressed', 'unknown'],
  build: buildUncompressed,
  spanSize: (checkpoints) => decodeTarZinfo(checkpoints).spanSize,
  spanLocator(checkpoints) {
    const { spanSize } = decodeTarZinfo(checkpoints);
    return (offset) => Math.floor(offset / spanSize);
  },
  describeCheckpoints: (checkpoints) => decodeTarZinfo(checkpoints),
  verify: { plan: (ztoc, problems) => planUncompressed(ztoc, problems) },
};

async function buildUncompressed(stream: AsyncIterable<Uint8Array>, { spanSize, header, tarOptions }: BuildContext): Promise<Serialized> {
  const tar = new GoTarReader(tarOptions);
  const spanDigests: string[] = [];
  let hash = createHash('sha256');
  let inSpan = 0;
  let size = 0;
  for await (const chunk of stream) {
    tar.push(chunk);
    size += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const take = Math.min(chunk.length - off, spanSize - inSpan);
      hash.update(chunk.subarray(off, off + take));
      off += take;
      inSpan += take;
      if (inSpan === spanSize) {
        spanDigests.push(`sha256:${hash.digest('hex')}`);
        hash = createHash('sha256');
        inSpan = 0;
      }
    }
  }
  if (inSpan > 0) spanDigests.push(`sha256:${hash.digest('hex')}`);
  tar.end();
  return serializedFrom({
    ...header,
    toc: tar.toc,
    compressedArchiveSize: size,
    uncompressedArchiveSize: tar.archiveSize,
    maxSpanId: spanDigests.length - 1,
    spanDigests,
    checkpoints: encodeTarZinfo(spanSize, size),
  });
}
