// Blob upload (OCI distribution "push"): POST opens a session, then either one PUT with the whole body
// (docker-registry 2.8 ignores a single POST carrying the blob) or PATCH chunks followed by an empty PUT.
// Every response may move the session, so the latest Location is always the one used. A failed session
// cannot be trusted to hold what was sent, so a retry starts a new one.
import type { Descriptor } from '../oci/target.ts';
import { RegistryError } from './errors.ts';
import type { RegistryHttp } from './http.ts';
import { withRetry } from './retry.ts';

const OCTET_STREAM = { 'content-type': 'application/octet-stream' };

function nextLocation(http: RegistryHttp, response: Response, current: URL, operation: string): URL {
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
  const operation = `push blob ${http.repository}@${desc.digest}`;
  await withRetry(http.retry, signal, async () => {
    const start = await http.once({ method: 'POST', path: 'blobs/uploads/', push: true, operation, ok: [202], signal });
    await start.body?.cancel();
    let location = nextLocation(http, start, http.url('blobs/uploads/'), operation);
    // A registry may require larger chunks (OCI-Chunk-Min-Length); honour it.
    const minChunk = Number(start.headers.get('oci-chunk-min-length') ?? 0);
    const size = Math.max(chunkSize, Number.isFinite(minChunk) ? minChunk : 0);
    let body: Uint8Array | undefined = content;
    if (content.length > size) {
      for (let offset = 0; offset < content.length; offset += size) {
        const chunk = content.subarray(offset, Math.min(offset + size, content.length));
        const headers = { ...OCTET_STREAM, 'content-range': `${offset}-${offset + chunk.length - 1}` };
        const patched = await http.once({ method: 'PATCH', path: location, headers, body: chunk, push: true, operation, ok: [202], signal });
        await patched.body?.cancel();
        location = nextLocation(http, patched, location, operation);
      }
      body = undefined;
    }
    const done = await http.once({ method: 'PUT', path: withDigest(location, desc.digest), headers: OCTET_STREAM, body, push: true, operation, ok: [201], signal });
    await done.body?.cancel();
  });
}
