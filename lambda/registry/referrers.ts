// Referrers: the OCI 1.1 API (`GET /v2/<repo>/referrers/<digest>`) where the registry has it, else the
// tag schema fallback: an OCI index tagged `<alg>-<hex>` that clients maintain themselves.

import { digestHex } from '../oci/digest.ts';
import { LimitExceededError } from '../oci/errors.ts';
import { MEDIA_TYPE_OCI_INDEX } from '../oci/media-types.ts';
import type { Descriptor } from '../oci/target.ts';
import { RegistryError } from './errors.ts';
import type { RegistryHttp } from './http.ts';
import { MANIFEST_ACCEPT } from './media-types.ts';

const MAX_INDEX_BYTES = 4 * 1024 * 1024;
/** Pages of one referrers listing; more fails (stopping silently would miss an index and push a duplicate). */
export const MAX_REFERRERS_PAGES = 100;

interface IndexJson {
  schemaVersion?: number;
  mediaType?: string;
  manifests?: Descriptor[];
}

/** The referrers tag for a subject: `sha256-<hex>`. */
export function referrersTag(digest: string): string {
  return `sha256-${digestHex(digest)}`;
}

/** The descriptor a referrers list carries for a manifest that has a `subject`, or undefined if it has none. */
export function referrerDescriptor(desc: Descriptor, manifestBytes: Uint8Array): { subject: string; entry: Descriptor } | undefined {
  let manifest: {
    subject?: { digest?: unknown };
    artifactType?: unknown;
    config?: { mediaType?: unknown };
    annotations?: Record<string, string>;
  };
  try {
    manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
  } catch {
    return undefined;
  }
  if (typeof manifest?.subject?.digest !== 'string') return undefined;
  // The spec: artifactType, else (image manifests) the config's media type.
  const artifactType =
    typeof manifest.artifactType === 'string'
      ? manifest.artifactType
      : typeof manifest.config?.mediaType === 'string'
        ? manifest.config.mediaType
        : undefined;
  const entry: Descriptor = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
  if (artifactType) entry.artifactType = artifactType;
  if (manifest.annotations && Object.keys(manifest.annotations).length > 0) entry.annotations = manifest.annotations;
  return { subject: manifest.subject.digest, entry };
}

function parseIndex(bytes: Uint8Array, what: string): IndexJson {
  try {
    const index = JSON.parse(new TextDecoder().decode(bytes)) as IndexJson;
    if (index && (index.manifests === undefined || Array.isArray(index.manifests))) return index;
  } catch {
    // reported below
  }
  throw new RegistryError('invalid-response', `${what}: not an OCI index`);
}

function nextPage(link: string | null, current: URL): URL | undefined {
  const match = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
  return match ? new URL(match[1]!, current) : undefined;
}

export class Referrers {
  /** Learned on first use: true once the API answered (or a push returned OCI-Subject), false after a 404. */
  apiSupported?: boolean;

  constructor(private readonly http: RegistryHttp) {}

  async list(subject: string, artifactType: string | undefined, signal?: AbortSignal): Promise<Descriptor[]> {
    const listed = this.apiSupported === false ? undefined : await this.fromApi(subject, artifactType, signal);
    const all = listed ?? (await this.fromTag(subject, signal))?.manifests ?? [];
    return artifactType === undefined ? all : all.filter((d) => d.artifactType === artifactType);
  }

  /** Adds `entry` to the subject's fallback tag index, unless it is there already. */
  async addToFallbackTag(subject: string, entry: Descriptor, signal?: AbortSignal): Promise<void> {
    const tag = referrersTag(subject);
    // Read-modify-write is racy with concurrent writers: check that our entry survived, a few times.
    for (let round = 0; ; round++) {
      const index = (await this.fromTag(subject, signal)) ?? { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [] };
      const manifests = index.manifests ?? [];
      if (manifests.some((d) => d.digest === entry.digest)) return;
      if (round === 3) break;
      const updated = { ...index, schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [...manifests, entry] };
      const response = await this.http.request({
        method: 'PUT',
        path: `manifests/${tag}`,
        headers: { 'content-type': MEDIA_TYPE_OCI_INDEX },
        body: new TextEncoder().encode(JSON.stringify(updated)),
        push: true,
        operation: `referrers index ${this.http.repository}:${tag}`,
        ok: [201],
        signal,
      });
      await response.body?.cancel();
    }
    throw new RegistryError(
      'conflict',
      `registry ${this.http.registry}: referrers index ${this.http.repository}:${tag} keeps changing under concurrent writers`,
    );
  }

  /** The API's answer (all pages), or undefined when the registry has no referrers API. */
  private async fromApi(subject: string, artifactType: string | undefined, signal?: AbortSignal): Promise<Descriptor[] | undefined> {
    // `+` must be %2B: query parsers read a bare `+` as a space.
    let url: URL | undefined = this.http.url(
      `referrers/${subject}${artifactType === undefined ? '' : `?artifactType=${encodeURIComponent(artifactType)}`}`,
    );
    const operation = `referrers of ${this.http.repository}@${subject}`;
    const found: Descriptor[] = [];
    for (let page = 0; url; page++) {
      if (page === MAX_REFERRERS_PAGES) {
        throw new LimitExceededError(
          'max-referrers-pages',
          `registry ${this.http.registry}: ${operation}: more than ${MAX_REFERRERS_PAGES} pages`,
        );
      }
      const { response, bytes } = await this.http.requestBytes(
        { method: 'GET', path: url, headers: { accept: MEDIA_TYPE_OCI_INDEX }, operation, ok: [200, 404], signal },
        MAX_INDEX_BYTES,
        'max-index-bytes',
      );
      if (response.status === 404) {
        if (page > 0)
          throw new RegistryError('not-found', `registry ${this.http.registry}: ${operation} not found (404 on a later page)`, 404);
        this.apiSupported = false;
        return undefined;
      }
      this.apiSupported = true;
      found.push(...(parseIndex(bytes, `registry ${this.http.registry}: ${operation}`).manifests ?? []));
      url = nextPage(response.headers.get('link'), url);
    }
    return found;
  }

  private async fromTag(subject: string, signal?: AbortSignal): Promise<IndexJson | undefined> {
    const tag = referrersTag(subject);
    const operation = `referrers index ${this.http.repository}:${tag}`;
    const { response, bytes } = await this.http.requestBytes(
      { method: 'GET', path: `manifests/${tag}`, headers: { accept: MANIFEST_ACCEPT }, operation, ok: [200, 404], signal },
      MAX_INDEX_BYTES,
      'max-index-bytes',
    );
    return response.status === 404 ? undefined : parseIndex(bytes, `registry ${this.http.registry}: ${operation}`);
  }
}
