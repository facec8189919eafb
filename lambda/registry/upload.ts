// Blob upload (OCI distribution "push"): POST opens a session, then either one PUT with the whole body
// (docker-registry 2.8 ignores a single POST carrying the blob) or PATCH chunks followed by an empty PUT.
// Every response may move the session, so the latest Location is always the one used. A failed session
// cannot be trusted to hold what was sent, so a retry starts a new one.
import { createHash } from 'node:crypto';
import type { Descriptor } from '../oci/target.ts';
import { RegistryError } from './errors.ts';
import { concatBytes, type RegistryHttp } from './http.ts';
import { withRetry } from './retry.ts';
import type { HttpResponse } from './transport.ts';

const OCTET_STREAM = { 'content-type': 'application/octet-stream' };

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

export async function uploadBlob(http: RegistryHttp, desc: Descriptor, content: Uint8Array, chunkSize: number, signal?: AbortSignal): Promise<void> {
  await uploadBlobFrom(http, desc, async () => [content], chunkSize, signal);
}

/**
 * Uploads a blob read from `open()` (called again for each retry): one PUT when it fits in a chunk, else
 * PATCH chunks and an empty PUT. Memory holds one chunk; the digest is checked before the final PUT.
 */
export async function uploadBlobFrom(
  http: RegistryHttp,
  desc: Descriptor,
  open: () => Promise<AsyncIterable<Uint8Array> | Iterable<Uint8Array>>,
  chunkSize: number,
  signal?: AbortSignal,
): Promise<void> {
  const operation = `push blob ${http.repository}@${desc.digest}`;
  await withRetry(http.retry, signal, async () => {
    const start = await http.once({ method: 'POST', path: 'blobs/uploads/', push: true, operation, ok: [202], signal });
    await start.body?.cancel();
    let location = nextLocation(http, start, http.url('blobs/uploads/'), operation);
    // A registry may require larger chunks (OCI-Chunk-Min-Length); honour it.
    const minChunk = Number(start.headers.get('oci-chunk-min-length') ?? 0);
    const size = Math.max(chunkSize, Number.isFinite(minChunk) ? minChunk : 0);
    const hash = createHash('sha256');
    let offset = 0; // bytes sent in PATCHes
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    const patch = async (chunk: Uint8Array) => {
      const headers = { ...OCTET_STREAM, 'content-range': `${offset}-${offset + chunk.length - 1}` };
      const patched = await http.once({ method: 'PATCH', path: location, headers, body: chunk, push: true, operation, ok: [202], signal });
      await patched.body?.cancel();
      location = nextLocation(http, patched, location, operation);
      offset += chunk.length;
    };
    for await (const piece of await open()) {
      hash.update(piece);
      for (let at = 0; at < piece.length; ) {
        // A full chunk goes out only when more data follows: a blob of at most one chunk is one PUT.
        if (pendingBytes === size) {
          await patch(joined(pending, pendingBytes));
          pending = [];
          pendingBytes = 0;
        }
        const take = Math.min(piece.length - at, size - pendingBytes);
        pending.push(piece.subarray(at, at + take));
        pendingBytes += take;
        at += take;
      }
    }
    const digest = `sha256:${hash.digest('hex')}`;
    const total = offset + pendingBytes;
    if (digest !== desc.digest || total !== desc.size) {
      throw new RegistryError('digest-mismatch', `registry ${http.registry}: ${operation}: content hashes to ${digest} (${total} bytes, expected ${desc.size})`);
    }
    let body: Uint8Array | undefined = joined(pending, pendingBytes);
    if (offset > 0) {
      if (body.length > 0) await patch(body);
      body = undefined;
    }
    const done = await http.once({ method: 'PUT', path: withDigest(location, desc.digest), headers: OCTET_STREAM, body, push: true, operation, ok: [201], signal });
    await done.body?.cancel();
  });
}

/** The pending pieces as one chunk (no copy when there is a single whole piece). */
function joined(parts: Uint8Array[], length: number): Uint8Array {
  return parts.length === 1 && parts[0]!.length === length ? parts[0]! : concatBytes(parts, length);
}
