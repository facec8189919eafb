// The transport under RegistryTarget: one exchange = auth (answering 401 challenges once), manual
// redirects that never carry Authorization to another origin, and classification of the outcome into
// success, a retryable failure, or a one-line RegistryError.

import { LimitExceededError, SociIndexerError } from '../oci/errors.ts';
import { Authenticator } from './auth.ts';
import type { CredentialSource } from './credentials.ts';
import { type ErrorBody, networkError, RegistryError, readErrorBody, responseError } from './errors.ts';
import { isRetryableStatus, parseRetryAfter, RetryableError, type RetryPolicy, withRetry } from './retry.ts';
import { type HttpRequestBody, type HttpResponse, type HttpTransport, isDowngrade, isRedirectStatus } from './transport.ts';

export interface RequestSpec {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  /** Below `/v2/<repository>/`, or an absolute URL (an upload Location). */
  path: string | URL;
  headers?: Record<string, string>;
  /** A stream is sent once: a 401 on it is not answered by sending it again. */
  body?: HttpRequestBody;
  /** Needs push access (token scope `pull,push`). */
  push?: boolean;
  /** Names the operation in errors, e.g. `manifest app:v1`. */
  operation: string;
  /** Statuses handed back to the caller; any other one fails. */
  ok: readonly number[];
  signal?: AbortSignal;
  /** The whole (small) body will be read: the exchange deadline covers it too. */
  wholeBody?: boolean;
}

export interface RegistryHttpOptions {
  registry: string;
  repository: string;
  credentials?: CredentialSource;
  plainHttp?: boolean;
  userAgent: string;
  retry: RetryPolicy;
  transport: HttpTransport;
}

const MAX_REDIRECTS = 10;

/** `localhost`, `127.x.x.x` and `[::1]` (with or without a port) are reached over plain HTTP. */
export function isLoopbackHost(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d+$/, '');
  return name === 'localhost' || name === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

export class RegistryHttp {
  readonly origin: string;
  readonly registry: string;
  readonly repository: string;
  readonly retry: RetryPolicy;
  private readonly auth: Authenticator;

  constructor(private readonly options: RegistryHttpOptions) {
    const plain = options.plainHttp === true || isLoopbackHost(options.registry);
    this.origin = new URL(`${plain ? 'http' : 'https'}://${options.registry}`).origin;
    this.registry = options.registry;
    this.repository = options.repository;
    this.retry = options.retry;
    this.auth = new Authenticator({
      registry: options.registry,
      credentials: options.credentials,
      transport: options.transport,
      userAgent: options.userAgent,
      retry: options.retry,
      allowHttpRealm: (url) => options.plainHttp === true || isLoopbackHost(url.host),
    });
  }

  url(path: string | URL): URL {
    return path instanceof URL ? path : new URL(`${this.origin}/v2/${this.repository}/${path}`);
  }

  /** Retries `once` within the retry budget. */
  request(spec: RequestSpec): Promise<HttpResponse> {
    return withRetry(this.retry, spec.signal, () => this.once(spec));
  }

  /** A request whose whole (bounded) body is wanted; a connection dropped while reading it is retried too. */
  requestBytes(spec: RequestSpec, limit: number, limitName?: string): Promise<{ response: HttpResponse; bytes: Uint8Array }> {
    return withRetry(this.retry, spec.signal, async () => {
      const response = await this.once({ ...spec, wholeBody: true });
      try {
        return { response, bytes: await readLimited(response, limit, `registry ${this.registry}: ${spec.operation}`, limitName) };
      } catch (err) {
        if (err instanceof SociIndexerError || spec.signal?.aborted) throw err;
        throw new RetryableError(networkError(`registry ${this.registry}: ${spec.operation}`, err));
      }
    });
  }

  /** One attempt; a 429/5xx or dropped connection becomes a RetryableError, other unexpected statuses a RegistryError. */
  async once(spec: RequestSpec): Promise<HttpResponse> {
    let url = this.url(spec.path);
    for (let hop = 0; ; hop++) {
      const response = await this.send(url, spec);
      const location = response.headers.get('location');
      if (isRedirectStatus(response.status) && location && (spec.method === 'GET' || spec.method === 'HEAD')) {
        await response.body?.cancel();
        if (hop >= MAX_REDIRECTS)
          throw new RegistryError('failed', `registry ${this.registry}: ${spec.operation} failed (too many redirects)`);
        const next = new URL(location, url);
        if (isDowngrade(url, next)) {
          throw new RegistryError(
            'unsupported',
            `registry ${this.registry}: ${spec.operation}: refusing redirect from ${url.origin} to ${next.origin} (https to http)`,
          );
        }
        url = next;
        continue;
      }
      if (spec.ok.includes(response.status)) return response;
      // Every response not handed back is read out or closed here, so no socket outlives the exchange.
      let body: ErrorBody = {};
      if (spec.method === 'HEAD') await response.body?.cancel();
      else body = await readErrorBody(response);
      const error = responseError(this.registry, spec.operation, response.status, body);
      if (isRetryableStatus(response.status)) throw new RetryableError(error, parseRetryAfter(response.headers.get('retry-after')));
      throw error;
    }
  }

  private async send(url: URL, spec: RequestSpec): Promise<HttpResponse> {
    // Credentials go only to the registry's own origin: never to a redirect target such as S3.
    const authenticate = url.origin === this.origin;
    const scope = `repository:${this.repository}:${spec.push ? 'pull,push' : 'pull'}`;
    let authorization = authenticate ? await this.auth.authorization(scope, spec.signal) : undefined;
    for (let round = 0; ; round++) {
      const headers: Record<string, string> = { 'user-agent': this.options.userAgent, ...spec.headers };
      if (authorization) headers.authorization = authorization;
      let response: HttpResponse;
      try {
        response = await this.options.transport(url, {
          method: spec.method,
          headers,
          body: spec.body,
          redirect: 'manual',
          signal: spec.signal,
          wholeBody: spec.wholeBody,
        });
      } catch (err) {
        if (spec.signal?.aborted) throw err;
        throw new RetryableError(networkError(`registry ${this.registry}: ${spec.operation}`, err));
      }
      const replayable = spec.body === undefined || spec.body instanceof Uint8Array;
      if (response.status !== 401 || !authenticate || round > 0 || !replayable) return response;
      let retry: boolean;
      try {
        retry = await this.auth.challenged(response.headers.get('www-authenticate'), scope, authorization, spec.signal);
      } catch (err) {
        await response.body?.cancel();
        throw err;
      }
      if (!retry) return response;
      await response.body?.cancel();
      authorization = await this.auth.authorization(scope, spec.signal);
    }
  }
}

/**
 * Reads a whole response body, refusing more than `limit` bytes with a LimitExceededError named `name`
 * (the connection is closed, the rest never read).
 */
export async function readLimited(response: HttpResponse, limit: number, what: string, name = 'max-response-bytes'): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  const tooLarge = () => new LimitExceededError(name, `${what}: response body exceeds the ${formatBytes(limit)} limit`);
  if (declared > limit) {
    await response.body?.cancel();
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  // Leaving the loop early (limit, error) closes the body through the iterator's return().
  for await (const chunk of (response.body ?? []) as AsyncIterable<Uint8Array>) {
    total += chunk.length;
    if (total > limit) throw tooLarge();
    chunks.push(chunk);
  }
  return concatBytes(chunks, total);
}

/** `1 MiB`, `4 MiB`, or bytes when not a whole number of KiB/MiB. */
export function formatBytes(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n}-byte`;
}

/** Joins chunks into one plain Uint8Array (not a Buffer, so callers compare and type it simply). */
export function concatBytes(chunks: Uint8Array[], total = chunks.reduce((n, c) => n + c.length, 0)): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
