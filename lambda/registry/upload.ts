// Blob upload (OCI distribution "push") the way clients proven on Amazon ECR do it (docker, go-containerregistry):
// POST opens a session; a small blob then goes up in one PUT (docker-registry 2.8 ignores a single POST
// carrying the blob), a larger one in ONE streaming PATCH followed by an empty PUT. Fixed-size chunks are
// sent only when the registry asks for them (OCI-Chunk-Min-Length), clamped to ECR's part limits.
// ECR answers a PATCH with 201 rather than 202 and stops advancing `Range` after the first part, so
// both statuses are accepted and offsets are tracked here, never read from `Range`. Every response may
// move the session, so the latest Location is always the one used. A failed session cannot be trusted
// to hold what was sent, so a retry starts a new one.
import { createHash, type Hash } from 'node:crypto';
import { DigestMismatchError } from '../oci/errors.ts';
import type { Descriptor } from '../oci/target.ts';
import { RegistryError } from './errors.ts';
import { concatBytes, type RegistryHttp } from './http.ts';
import { withRetry } from './retry.ts';
import type { HttpResponse } from './transport.ts';

const OCTET_STREAM = { 'content-type': 'application/octet-stream' };
/** A PATCH is answered 202 by the spec and docker-registry, 201 by ECR. */
const PATCH_OK = [201, 202] as const;
/** ECR refuses any part but the last below 5 MiB (LayerPartTooSmallException). */
export const MIN_CHUNK_BYTES = 5 * 1024 * 1024;
/** What one chunk may hold in memory, whatever a registry's OCI-Chunk-Min-Length asks for. */
export const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

function nextLocation(http: RegistryHttp, response: HttpResponse, current: URL, operation: string): URL {
  const location = response.headers.get('location');
  if (!location) throw new RegistryError('failed', `registry ${http.registry}: ${operation} failed (no upload Location)`);
  return new URL(location, current);
}

/** Appends `digest=` without re-encoding the session state the registry put in the query. */
function withDigest(location: URL, digest: string): URL {
  const url = new URL(location);
  url.search = `${url.search ? `${url.search}&` : '?'}digest=${encodeURIComponent(digest)}`;
  return url;
}

/**
 * The chunk size a registry's `OCI-Chunk-Min-Length` calls for, clamped to [5 MiB, 64 MiB]: ECR's part
 * minimum below, and a bound on memory above (a hostile header cannot make us buffer gigabytes).
 * Undefined when the header is absent or not a positive integer: then the blob is streamed in one PATCH.
 */
export function requestedChunkSize(header: string | null): number | undefined {
  if (header === null || !/^\s*\d{1,20}\s*$/.test(header)) return undefined;
  const asked = Number(header);
  if (asked <= 0) return undefined;
  return Math.min(MAX_CHUNK_BYTES, Math.max(MIN_CHUNK_BYTES, asked));
}

export async function uploadBlob(
  http: RegistryHttp,
  desc: Descriptor,
  content: Uint8Array,
  monolithicLimit: number,
  signal?: AbortSignal,
): Promise<void> {
  await uploadBlobFrom(http, desc, async () => [content], monolithicLimit, signal);
}

/** Reads the source once, hashing and counting it, and refusing more bytes than the descriptor says. */
class CheckedSource {
  readonly hash: Hash = createHash('sha256');
  bytes = 0;
  finished = false;
  failure: unknown;

  constructor(
    private readonly what: string,
    private readonly desc: Descriptor,
  ) {}

  async *read(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    try {
      for await (const piece of source) {
        if (this.bytes + piece.length > this.desc.size)
          throw new DigestMismatchError(
            this.desc.digest,
            `more than ${this.desc.size} bytes`,
            `${this.what}: content is more than the expected ${this.desc.size} bytes`,
          );
        this.hash.update(piece);
        this.bytes += piece.length;
        if (piece.length > 0) yield piece;
      }
      this.finished = true;
    } catch (err) {
      this.failure = err;
      throw err;
    }
  }

  /** Throws unless the whole source was read and matches the descriptor (before the closing PUT commits it). */
  verify(): void {
    if (this.failure !== undefined) throw this.failure;
    if (!this.finished) throw new RegistryError('failed', `${this.what} failed (the registry answered before the whole blob was sent)`);
    const digest = `sha256:${this.hash.digest('hex')}`;
    if (digest !== this.desc.digest || this.bytes !== this.desc.size) {
      throw new DigestMismatchError(
        this.desc.digest,
        digest,
        `${this.what}: content hashes to ${digest} (${this.bytes} bytes, expected ${this.desc.size})`,
      );
    }
  }
}

/** Splits a stream into pieces of exactly `size` bytes (the last may be shorter), holding one piece. */
async function* fixedChunks(source: AsyncIterable<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  for await (const piece of source) {
    for (let at = 0; at < piece.length; ) {
      const take = Math.min(piece.length - at, size - pendingBytes);
      pending.push(piece.subarray(at, at + take));
      pendingBytes += take;
      at += take;
      if (pendingBytes === size) {
        yield joined(pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
      }
    }
  }
  if (pendingBytes > 0) yield joined(pending, pendingBytes);
}

/**
 * Uploads a blob read from `open()` (called again for each retry): one PUT when it is at most
 * `monolithicLimit` bytes, else one streaming PATCH (or the chunks the registry asks for) and an empty
 * PUT. Memory holds one source piece (or one chunk); the digest is checked before the closing PUT.
 */
export async function uploadBlobFrom(
  http: RegistryHttp,
  desc: Descriptor,
  open: () => Promise<AsyncIterable<Uint8Array> | Iterable<Uint8Array>>,
  monolithicLimit: number,
  signal?: AbortSignal,
): Promise<void> {
  const operation = `push blob ${http.repository}@${desc.digest}`;
  const what = `registry ${http.registry}: ${operation}`;
  await withRetry(http.retry, signal, async () => {
    const start = await http.once({ method: 'POST', path: 'blobs/uploads/', push: true, operation, ok: [202], signal });
    await start.body?.cancel();
    let location = nextLocation(http, start, http.url('blobs/uploads/'), operation);
    const source = new CheckedSource(what, desc);
    const pieces = source.read(await open());
    const chunkSize = requestedChunkSize(start.headers.get('oci-chunk-min-length'));

    if (desc.size <= monolithicLimit) {
      const parts: Uint8Array[] = [];
      for await (const piece of pieces) parts.push(piece);
      source.verify();
      const done = await http.once({
        method: 'PUT',
        path: withDigest(location, desc.digest),
        headers: OCTET_STREAM,
        body: joined(parts, source.bytes),
        push: true,
        operation,
        ok: [201],
        signal,
      });
      await done.body?.cancel();
      return;
    }

    if (chunkSize === undefined) {
      let patched: HttpResponse;
      try {
        patched = await http.once({
          method: 'PATCH',
          path: location,
          headers: OCTET_STREAM,
          body: pieces,
          push: true,
          operation,
          ok: PATCH_OK,
          signal,
        });
      } catch (err) {
        // The source failing mid-stream breaks the request too: report (and retry, or not) the source's failure.
        if (source.failure !== undefined) throw source.failure;
        throw err;
      }
      await patched.body?.cancel();
      location = nextLocation(http, patched, location, operation);
    } else {
      let offset = 0; // what we sent: ECR's Range stops advancing, so it is never asked
      for await (const chunk of fixedChunks(pieces, chunkSize)) {
        const headers = { ...OCTET_STREAM, 'content-range': `${offset}-${offset + chunk.length - 1}` };
        const patched = await http.once({
          method: 'PATCH',
          path: location,
          headers,
          body: chunk,
          push: true,
          operation,
          ok: PATCH_OK,
          signal,
        });
        await patched.body?.cancel();
        location = nextLocation(http, patched, location, operation);
        offset += chunk.length;
      }
    }
    source.verify();
    const done = await http.once({
      method: 'PUT',
      path: withDigest(location, desc.digest),
      headers: OCTET_STREAM,
      push: true,
      operation,
      ok: [201],
      signal,
    });
    await done.body?.cancel();
  });
}

/** The pending pieces as one chunk (no copy when there is a single whole piece). */
function joined(parts: Uint8Array[], length: number): Uint8Array {
  return parts.length === 1 && parts[0]!.length === length ? parts[0]! : concatBytes(parts, length);
}
