// A Target backed by an OCI Distribution registry (ECR, docker-registry, …): resolve/fetch/push/tag and
// referrers over HTTP, with auth, retries, resumable verified blob reads and streamed uploads.

import { createHash } from 'node:crypto';
import { digestHex, isDigest, sha256Digest } from '../oci/digest.ts';
import { DigestMismatchError, InvalidReferenceError, SociIndexerError } from '../oci/errors.ts';
import { isRegistryHost, isRepositoryName, isTag } from '../oci/reference.ts';
import { checkDescriptorSize, type Descriptor, type FetchOptions, type Target } from '../oci/target.ts';
import { type CredentialFunc, type CredentialSource, defaultCredentialSource, toCredentialSource } from './credentials.ts';
import { checkContent, networkError, RegistryError } from './errors.ts';
import { concatBytes, RegistryHttp } from './http.ts';
import { isManifestMediaType, MANIFEST_ACCEPT } from './media-types.ts';
import { mountBlob } from './mount.ts';
import { Referrers, referrerDescriptor } from './referrers.ts';
import { backoffDelay, type RetryOptions, retryPolicy, sleep } from './retry.ts';
import { createNodeTransport, fetchTransport, type HttpResponse, type HttpTimeouts, nodeTransport } from './transport.ts';
import { uploadBlob, uploadBlobFrom } from './upload.ts';

export interface RegistryTargetOptions {
  /** `host[:port]`, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com` or `127.0.0.1:5000`. */
  registry: string;
  repository: string;
  /** Where credentials come from (default: the standard chain, defaultCredentialSource). */
  credentials?: CredentialSource | CredentialFunc;
  /** Use http:// even for a non-loopback host (loopback hosts always use it). */
  plainHttp?: boolean;
  userAgent?: string;
  retry?: RetryOptions;
  /** Plugs in a fetch function instead of node:http (tests use it to reroute hosts). */
  fetchImpl?: typeof fetch;
  /**
   * Blobs up to this size go up in one PUT (default 16 MiB); larger ones stream in one PATCH, or in
   * the fixed-size chunks a registry asks for with OCI-Chunk-Min-Length (clamped to 5–64 MiB).
   */
  monolithicLimit?: number;
  /** Overrides of the node:http transport's timeouts (DEFAULT_HTTP_TIMEOUTS). */
  timeouts?: Partial<HttpTimeouts>;
}

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MANIFEST_CACHE_ENTRIES = 128;

export class RegistryTarget implements Target {
  readonly description: string;
  private readonly http: RegistryHttp;
  private readonly referrersClient: Referrers;
  private readonly monolithicLimit: number;
  /** Manifest bytes by digest (small, immutable): lets tag() and fetch() after resolve() skip a round trip. */
  private readonly manifests = new Map<string, Uint8Array>();

  constructor(options: RegistryTargetOptions) {
    if (!isRegistryHost(options.registry))
      throw new InvalidReferenceError(`invalid registry host ${JSON.stringify(options.registry.slice(0, 100))}`);
    if (!isRepositoryName(options.repository)) {
      throw new InvalidReferenceError(`invalid repository name ${JSON.stringify(options.repository.slice(0, 100))}`);
    }
    this.description = `${options.registry}/${options.repository}`;
    this.monolithicLimit = Math.max(0, options.monolithicLimit ?? 16 * 1024 * 1024);
    this.http = new RegistryHttp({
      registry: options.registry,
      repository: options.repository,
      credentials: toCredentialSource(options.credentials ?? defaultCredentialSource()),
      plainHttp: options.plainHttp,
      userAgent: options.userAgent ?? 'soci-indexer',
      retry: retryPolicy(options.retry),
      transport: options.fetchImpl
        ? fetchTransport(options.fetchImpl)
        : options.timeouts
          ? createNodeTransport(options.timeouts)
          : nodeTransport,
    });
    this.referrersClient = new Referrers(this.http);
  }

  async resolve(reference: string): Promise<Descriptor> {
    const byDigest = reference.includes(':');
    if (byDigest) digestHex(reference);
    else if (!isTag(reference)) throw new InvalidReferenceError(`invalid tag ${JSON.stringify(reference.slice(0, 140))}`);
    const operation = `manifest ${this.http.repository}${byDigest ? '@' : ':'}${reference}`;
    const { response, bytes } = await this.http.requestBytes(
      { method: 'GET', path: `manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT }, operation, ok: [200] },
      MAX_MANIFEST_BYTES,
      'max-manifest-bytes',
    );
    const what = `registry ${this.http.registry}: ${operation}`;
    const digest = sha256Digest(bytes);
    const claimed = byDigest ? reference : response.headers.get('docker-content-digest');
    if (claimed && isDigest(claimed)) checkContent({ digest: claimed, size: bytes.length }, bytes, digest, what);
    const mediaType = manifestMediaType(response.headers.get('content-type'), bytes);
    if (!mediaType)
      throw new RegistryError(
        'unsupported',
        `${what}: unsupported manifest media type ${JSON.stringify(response.headers.get('content-type'))}`,
      );
    this.remember(digest, bytes);
    return { mediaType, digest, size: bytes.length };
  }

  async fetch(desc: Descriptor, options: FetchOptions = {}): Promise<AsyncIterable<Uint8Array>> {
    digestHex(desc.digest);
    const offset = options.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > desc.size) {
      throw new RegistryError('invalid-input', `${this.description}: offset ${offset} is outside ${desc.digest} (${desc.size} bytes)`);
    }
    if (isManifestMediaType(desc.mediaType)) {
      const bytes = (await this.manifestBytes(desc, options.signal)).subarray(offset);
      return (async function* () {
        options.onBytes?.(bytes.length);
        yield bytes;
      })();
    }
    return this.streamBlob(desc, offset, offset === desc.size ? undefined : await this.openBlob(desc, offset, options.signal), options);
  }

  async fetchBytes(desc: Descriptor, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    checkDescriptorSize(desc, this.description);
    if (isManifestMediaType(desc.mediaType)) return this.manifestBytes(desc, options.signal);
    const chunks: Uint8Array[] = [];
    for await (const chunk of await this.fetch(desc, options)) chunks.push(chunk);
    return concatBytes(chunks);
  }

  async exists(desc: Descriptor): Promise<boolean> {
    digestHex(desc.digest);
    const manifest = isManifestMediaType(desc.mediaType);
    const response = await this.http.request({
      method: 'HEAD',
      path: `${manifest ? 'manifests' : 'blobs'}/${desc.digest}`,
      headers: manifest ? { accept: MANIFEST_ACCEPT } : {},
      operation: `${manifest ? 'manifest' : 'blob'} ${this.http.repository}@${desc.digest}`,
      ok: [200, 404],
    });
    await response.body?.cancel();
    return response.status === 200;
  }

  async pushFrom(desc: Descriptor, open: () => Promise<AsyncIterable<Uint8Array>>, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (isManifestMediaType(desc.mediaType)) {
      // Manifests are small and need their bytes for the referrers bookkeeping.
      const parts: Uint8Array[] = [];
      for await (const part of await open()) parts.push(part);
      return this.push(desc, concatBytes(parts), options);
    }
    if (await this.exists(desc)) return;
    return uploadBlobFrom(this.http, desc, open, this.monolithicLimit, options.signal);
  }

  /** Mounts a blob from another repository of the same registry (false for any other source). */
  async mountFrom(desc: Descriptor, from: Target, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    digestHex(desc.digest);
    if (!(from instanceof RegistryTarget) || from.http.origin !== this.http.origin || isManifestMediaType(desc.mediaType)) return false;
    if (from.http.repository === this.http.repository) return this.exists(desc);
    return mountBlob(this.http, desc, from.http.repository, options.signal);
  }

  async push(desc: Descriptor, content: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<void> {
    checkContent(desc, content, sha256Digest(content), `${this.description}: push ${desc.digest}`);
    if (!isManifestMediaType(desc.mediaType)) {
      if (await this.exists(desc)) return;
      return uploadBlob(this.http, desc, content, this.monolithicLimit, options.signal);
    }
    // Manifests are always PUT (idempotent and small), so a referrers fallback missed earlier gets repaired.
    const response = await this.putManifest(desc, desc.digest, content, options.signal);
    this.remember(desc.digest, content);
    const referrer = referrerDescriptor(desc, content);
    if (!referrer) return;
    if (response.headers.has('oci-subject')) {
      this.referrersClient.apiSupported = true;
      return;
    }
    await this.referrersClient.addToFallbackTag(referrer.subject, referrer.entry, options.signal);
  }

  async tag(desc: Descriptor, tag: string): Promise<void> {
    if (!isTag(tag)) throw new InvalidReferenceError(`invalid tag ${JSON.stringify(tag.slice(0, 140))}`);
    if (!isManifestMediaType(desc.mediaType))
      throw new RegistryError('invalid-input', `${this.description}: cannot tag ${desc.mediaType} ${desc.digest}: not a manifest`);
    const content = await this.manifestBytes(desc);
    // A tag that already names this manifest needs no write: ECR refuses any PUT to an existing tag of a
    // tag-immutable repository (400 TAG_INVALID), even an identical one, and PutImage is its scarcest
    // quota (10 per second). The check is a HEAD (BatchGetImage, 2,000 per second).
    if ((await this.taggedDigest(tag)) === desc.digest) return;
    try {
      await this.putManifest(desc, tag, content);
    } catch (err) {
      if (!(err instanceof RegistryError && err.status === 400 && err.code === 'TAG_INVALID')) throw err;
      const current = await this.taggedDigest(tag);
      if (current === desc.digest) return; // someone wrote the same thing meanwhile
      if (current === undefined) throw err;
      throw new RegistryError(
        'failed',
        `registry ${this.http.registry}: tag ${this.http.repository}:${tag} is immutable (400 TAG_INVALID): it names ${current} and cannot be moved to ${desc.digest}; ` +
          'write the output under its own tag (the suffix mode, not in-place) and exclude those tags from immutability (ECR IMMUTABLE_WITH_EXCLUSION with a filter such as *-soci)',
        400,
        'TAG_INVALID',
        { cause: err },
      );
    }
  }

  /** The digest `tag` names now, undefined when it does not exist. */
  private async taggedDigest(tag: string): Promise<string | undefined> {
    const response = await this.http.request({
      method: 'HEAD',
      path: `manifests/${tag}`,
      headers: { accept: MANIFEST_ACCEPT },
      operation: `manifest ${this.http.repository}:${tag}`,
      ok: [200, 404],
    });
    await response.body?.cancel();
    if (response.status === 404) return undefined;
    const digest = response.headers.get('docker-content-digest');
    return digest && isDigest(digest) ? digest : (await this.resolve(tag)).digest;
  }

  referrers(subject: Descriptor, artifactType?: string): Promise<Descriptor[]> {
    digestHex(subject.digest);
    return this.referrersClient.list(subject.digest, artifactType);
  }

  private async putManifest(desc: Descriptor, reference: string, content: Uint8Array, signal?: AbortSignal): Promise<HttpResponse> {
    const response = await this.http.request({
      method: 'PUT',
      path: `manifests/${reference}`,
      headers: { 'content-type': desc.mediaType },
      body: content,
      push: true,
      operation: `push manifest ${this.http.repository}${reference.includes(':') ? '@' : ':'}${reference}`,
      ok: [201],
      signal,
    });
    await response.body?.cancel();
    return response;
  }

  private async manifestBytes(desc: Descriptor, signal?: AbortSignal): Promise<Uint8Array> {
    digestHex(desc.digest);
    const cached = this.manifests.get(desc.digest);
    if (cached) return cached;
    const operation = `manifest ${this.http.repository}@${desc.digest}`;
    const accept = MANIFEST_ACCEPT.includes(desc.mediaType) ? MANIFEST_ACCEPT : `${desc.mediaType}, ${MANIFEST_ACCEPT}`;
    const { bytes } = await this.http.requestBytes(
      { method: 'GET', path: `manifests/${desc.digest}`, headers: { accept }, operation, ok: [200], signal },
      MAX_MANIFEST_BYTES,
      'max-manifest-bytes',
    );
    checkContent(desc, bytes, sha256Digest(bytes), `registry ${this.http.registry}: ${operation}`);
    this.remember(desc.digest, bytes);
    return bytes;
  }

  private remember(digest: string, bytes: Uint8Array): void {
    this.manifests.delete(digest);
    this.manifests.set(digest, bytes);
    if (this.manifests.size > MANIFEST_CACHE_ENTRIES) this.manifests.delete(this.manifests.keys().next().value!);
  }

  /** GETs a blob from `from` on; `skip` is how many leading bytes to drop when the server ignored the Range. */
  private async openBlob(desc: Descriptor, from: number, signal?: AbortSignal): Promise<{ response: HttpResponse; skip: number }> {
    const operation = `blob ${this.http.repository}@${desc.digest}`;
    const response = await this.http.request({
      method: 'GET',
      path: `blobs/${desc.digest}`,
      headers: from > 0 ? { range: `bytes=${from}-` } : {},
      operation,
      ok: from > 0 ? [200, 206] : [200],
      signal,
    });
    if (response.status === 206 && !response.headers.get('content-range')?.startsWith(`bytes ${from}-`)) {
      await response.body?.cancel();
      throw new RegistryError(
        'failed',
        `registry ${this.http.registry}: ${operation} answered range ${JSON.stringify(response.headers.get('content-range'))} for bytes=${from}-`,
      );
    }
    return { response, skip: response.status === 200 ? from : 0 };
  }

  /**
   * Yields the blob from `offset`, counting bytes; when the connection drops it re-requests from where it
   * broke (within the retry budget). From offset 0 the digest is checked at the end.
   */
  private async *streamBlob(
    desc: Descriptor,
    offset: number,
    first: { response: HttpResponse; skip: number } | undefined,
    options: FetchOptions,
  ): AsyncGenerator<Uint8Array> {
    const { signal, onBytes } = options;
    const what = `registry ${this.http.registry}: blob ${this.http.repository}@${desc.digest}`;
    const hash = offset === 0 ? createHash('sha256') : undefined;
    let position = offset;
    let current = first;
    let drops = 0;
    try {
      while (current) {
        try {
          let received = 0;
          for await (const chunk of (current.response.body ?? []) as AsyncIterable<Uint8Array>) {
            received += chunk.length;
            let data = chunk;
            if (current.skip > 0) {
              const skipped = Math.min(current.skip, data.length);
              current.skip -= skipped;
              data = data.subarray(skipped);
              if (data.length === 0) continue;
            }
            if (position + data.length > desc.size)
              throw new DigestMismatchError(
                desc.digest,
                `more than ${desc.size} bytes`,
                `${what}: more than the expected ${desc.size} bytes`,
              );
            position += data.length;
            hash?.update(data);
            onBytes?.(data.length);
            yield data;
          }
          if (position < desc.size) {
            // A body that ended after all the bytes its Content-Length announced is the whole blob: it is
            // shorter than the descriptor says, which no retry changes. Otherwise the connection broke.
            const length = current.response.headers.get('content-length');
            if (length !== null && Number(length) === received) {
              throw new DigestMismatchError(
                desc.digest,
                `${position} bytes`,
                `${what}: the registry's blob ends after ${position} bytes, its descriptor says ${desc.size}`,
              );
            }
            throw new Error(`connection closed after ${position} of ${desc.size} bytes`);
          }
          current = undefined;
        } catch (err) {
          if (err instanceof SociIndexerError || signal?.aborted) throw err;
          if (++drops >= this.http.retry.attempts) throw networkError(what, err);
          await sleep(backoffDelay(this.http.retry, drops - 1), signal);
          current = await this.openBlob(desc, position, signal);
        }
      }
      const actual = `sha256:${hash?.digest('hex')}`;
      if (hash && actual !== desc.digest)
        throw new DigestMismatchError(desc.digest, actual, `${what}: content hashes to ${actual}, not ${desc.digest}`);
    } finally {
      if (current && !current.response.bodyUsed) await current.response.body?.cancel();
    }
  }
}

/** The manifest's media type from Content-Type, or from its JSON `mediaType` when the header is generic. */
function manifestMediaType(contentType: string | null, bytes: Uint8Array): string | undefined {
  const header = contentType?.split(';')[0]?.trim().toLowerCase();
  if (header && isManifestMediaType(header)) return header;
  try {
    const mediaType = (JSON.parse(new TextDecoder().decode(bytes)) as { mediaType?: unknown }).mediaType;
    return typeof mediaType === 'string' && isManifestMediaType(mediaType) ? mediaType : undefined;
  } catch {
    return undefined;
  }
}
