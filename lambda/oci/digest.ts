// sha256 content digests (`sha256:<64 lower-case hex>`), the only algorithm soci and ECR use.

import { createHash } from 'node:crypto';
import { DigestMismatchError, InvalidDigestError } from './errors.ts';
import type { Descriptor } from './target.ts';

const SHA256_DIGEST = /^sha256:[0-9a-f]{64}$/;

export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function isDigest(s: string): boolean {
  return SHA256_DIGEST.test(s);
}

/** The hex part of a sha256 digest; throws InvalidDigestError for anything else (e.g. before using it in a path). */
export function digestHex(digest: string): string {
  if (!isDigest(digest)) throw new InvalidDigestError(`not a sha256 digest: ${JSON.stringify(digest)}`);
  return digest.slice('sha256:'.length);
}

/** The descriptor of `bytes` stored under `mediaType`, with optional extra fields (annotations, platform…). */
export function descriptorFor(
  mediaType: string,
  bytes: Uint8Array,
  extra?: Omit<Partial<Descriptor>, 'mediaType' | 'digest' | 'size'>,
): Descriptor {
  return { mediaType, digest: sha256Digest(bytes), size: bytes.length, ...extra };
}

/** Throws DigestMismatchError unless `bytes` are exactly the content `desc` describes. */
export function verifyBytes(desc: Descriptor, bytes: Uint8Array): void {
  if (bytes.length !== desc.size) throw sizeMismatch(desc, bytes.length);
  const actual = sha256Digest(bytes);
  if (actual !== desc.digest) throw new DigestMismatchError(desc.digest, actual);
}

/**
 * Passes `chunks` through while hashing them; after the last chunk, fails with DigestMismatchError when
 * the size or digest differ from `desc` (as soon as the size is exceeded). The consumer has already seen
 * the bytes by then, which is the price of streaming: it must discard its result on error.
 */
export async function* verifyStream(chunks: AsyncIterable<Uint8Array>, desc: Descriptor): AsyncGenerator<Uint8Array> {
  digestHex(desc.digest);
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of chunks) {
    size += chunk.length;
    if (size > desc.size) throw sizeMismatch(desc, size, 'at least ');
    hash.update(chunk);
    yield chunk;
  }
  if (size !== desc.size) throw sizeMismatch(desc, size);
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== desc.digest) throw new DigestMismatchError(desc.digest, actual);
}

function sizeMismatch(desc: Descriptor, actual: number, qualifier = ''): DigestMismatchError {
  return new DigestMismatchError(
    desc.digest,
    `${qualifier}${actual} bytes`,
    `content of ${desc.digest} has ${qualifier}${actual} bytes, descriptor says ${desc.size}`,
  );
}
