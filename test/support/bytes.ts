// Small byte and descriptor helpers the test files share: a byte array fed as a stream in fixed-size
// chunks (optionally failing part-way, as a dropped connection does), and the descriptor of some bytes.
import { type Pack, pack } from 'tar-stream';
import { sha256Digest } from '../../lambda/oci/digest.ts';
import type { Descriptor } from '../../lambda/oci/target.ts';

/**
 * `bytes` as an async stream of `size`-byte chunks (the last one shorter). With `failAt`, the stream
 * throws "connection reset by peer" instead of yielding the chunk that starts at or after that offset.
 */
export async function* chunked(bytes: Uint8Array, size = 65536, failAt?: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) {
    if (failAt !== undefined && at >= failAt) throw new Error('connection reset by peer');
    yield bytes.subarray(at, Math.min(bytes.length, at + size));
  }
}

/** The descriptor of `bytes` (sha256 digest and size) with `mediaType`. */
export function descriptorOf(bytes: Uint8Array, mediaType = 'application/octet-stream'): Descriptor {
  return { mediaType, digest: sha256Digest(bytes), size: bytes.length };
}

/** Every item of an async iterable, in order. */
export async function arrayOf<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** A tar archive made with tar-stream: `add` writes the entries, the archive is finalized here. */
export async function tarBytes(add: (archive: Pack) => void): Promise<Buffer> {
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
  const done = new Promise<Buffer>((resolve, reject) => {
    archive.on('end', () => resolve(Buffer.concat(chunks)));
    archive.on('error', reject);
  });
  add(archive);
  archive.finalize();
  return done;
}
