// RegistryListing over the OCI distribution API, for any registry: `GET /v2/_catalog` and
// `GET /v2/<name>/tags/list`, both paginated with `n` and the `Link: <…>; rel="next"` header (ECR
// rejects n > 1000, docker-registry caps the catalog at 1000), and deletion by digest
// (`DELETE /v2/<name>/manifests/<digest>`, which removes every tag naming it: see RegistryListing).
import { digestHex } from '../oci/digest.ts';
import { isRepositoryName, isTag } from '../oci/reference.ts';
import type { RegistryListing, TagRecord } from '../oci/registry.ts';
import { RegistryTarget, type RegistryTargetOptions } from './client.ts';
import { type CredentialSource, defaultCredentialSource, toCredentialSource } from './credentials.ts';
import { RegistryError } from './errors.ts';
import { RegistryHttp } from './http.ts';
import { retryPolicy } from './retry.ts';
import { fetchTransport, nodeTransport } from './transport.ts';

/** Entries asked per page: the most ECR accepts. */
export const PAGE_SIZE = 1000;
/** A page is names only; 16 MiB is far above 1000 names of at most 256 characters. */
const MAX_PAGE_BYTES = 16 * 1024 * 1024;
/** A registry that keeps sending `next` links is cut off here rather than listed forever. */
const MAX_PAGES = 10_000;

export type RegistryListingOptions = Omit<RegistryTargetOptions, 'repository'> & {
  /** Entries asked per page (`n`). @default 1000 */
  pageSize?: number;
};

/** The `next` URL of a `Link` header, resolved against `base`; undefined when there is none. */
export function nextLink(header: string | null, base: URL): URL | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const match = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (match && /(?:^|;)\s*rel\s*=\s*"?next"?\s*(?:;|$)/i.test(match[2]!)) return new URL(match[1]!, base);
  }
  return undefined;
}

export class OciRegistryListing implements RegistryListing {
  readonly description: string;
  readonly calls: Record<string, number> = {};
  private readonly https = new Map<string, RegistryHttp>();
  private readonly targets = new Map<string, RegistryTarget>();
  private readonly credentials: CredentialSource | undefined;
  private readonly pageSize: number;

  readonly deletion = {
    scope: 'digest' as const,
    deleteTag: async (repository: string, tag: string, digest: string, signal?: AbortSignal): Promise<void> => {
      digestHex(digest);
      this.count('manifest DELETE');
      const response = await this.http(repository).request({
        method: 'DELETE',
        path: `manifests/${digest}`,
        push: true,
        operation: `delete manifest ${repository}@${digest} (tag ${tag})`,
        ok: [202, 200, 404],
        signal,
      });
      await response.body?.cancel();
    },
  };

  constructor(private readonly options: RegistryListingOptions) {
    this.description = options.registry;
    this.credentials = options.credentials && toCredentialSource(options.credentials);
    this.pageSize = Math.max(1, Math.min(PAGE_SIZE, options.pageSize ?? PAGE_SIZE));
  }

  target(repository: string): RegistryTarget {
    let target = this.targets.get(repository);
    if (!target) {
      target = new RegistryTarget({ ...this.options, repository, ...(this.credentials && { credentials: this.credentials }) });
      this.targets.set(repository, target);
    }
    return target;
  }

  async *repositories(signal?: AbortSignal): AsyncIterable<string> {
    const http = this.http('');
    for await (const page of this.pages(
      http,
      new URL(`${http.origin}/v2/_catalog?n=${this.pageSize}`),
      'catalog',
      'repositories',
      signal,
    )) {
      for (const name of page) if (isRepositoryName(name)) yield name;
    }
  }

  async *tags(repository: string, signal?: AbortSignal): AsyncIterable<TagRecord> {
    const http = this.http(repository);
    for await (const page of this.pages(http, http.url(`tags/list?n=${this.pageSize}`), 'tags/list', 'tags', signal)) {
      for (const tag of page) if (isTag(tag)) yield { tag };
    }
  }

  private count(call: string): void {
    this.calls[call] = (this.calls[call] ?? 0) + 1;
  }

  private http(repository: string): RegistryHttp {
    let http = this.https.get(repository);
    if (!http) {
      // `repository` '' serves the catalog (absolute URLs only).
      http = new RegistryHttp({
        registry: this.options.registry,
        repository,
        credentials: this.credentials ?? defaultCredentialSource(),
        plainHttp: this.options.plainHttp,
        userAgent: this.options.userAgent ?? 'soci-indexer',
        retry: retryPolicy(this.options.retry),
        transport: this.options.fetchImpl ? fetchTransport(this.options.fetchImpl) : nodeTransport,
      });
      this.https.set(repository, http);
    }
    return http;
  }

  /** Pages of a `{ <field>: string[] }` listing, following `Link` on the same origin. */
  private async *pages(http: RegistryHttp, first: URL, call: string, field: string, signal?: AbortSignal): AsyncIterable<string[]> {
    let url: URL | undefined = first;
    const seen = new Set<string>();
    for (let page = 0; url; page++) {
      if (page >= MAX_PAGES || seen.has(url.href))
        throw new RegistryError('failed', `registry ${http.registry}: ${call} did not end after ${page} pages`);
      seen.add(url.href);
      this.count(call);
      const { response, bytes } = await http.requestBytes(
        { method: 'GET', path: url, operation: call === 'catalog' ? 'catalog' : `tags of ${http.repository}`, ok: [200], signal },
        MAX_PAGE_BYTES,
      );
      let names: unknown;
      try {
        names = (JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>)[field];
      } catch {
        throw new RegistryError('failed', `registry ${http.registry}: ${call} answered something that is not JSON`);
      }
      // docker-registry answers `"tags": null` for a repository whose tags were all deleted.
      if (names !== null && names !== undefined && !(Array.isArray(names) && names.every((n) => typeof n === 'string'))) {
        throw new RegistryError('failed', `registry ${http.registry}: ${call} answered no ${field} list`);
      }
      yield (names ?? []) as string[];
      const next = nextLink(response.headers.get('link'), url);
      if (next && next.origin !== http.origin)
        throw new RegistryError('failed', `registry ${http.registry}: ${call} links to another origin (${next.origin})`);
      url = next;
    }
  }
}
