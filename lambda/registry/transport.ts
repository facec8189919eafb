// The HTTP exchange under the registry client. By default it is node:http / node:https rather than the
// global fetch: on a 240 MB blob fetch costs ~0.63 s of CPU against ~0.33 s for a
// node:http response read as an async iterable (llhttp in WebAssembly plus WHATWG streams), and loading
// undici adds ~25 MB of RSS. That CPU is taken from the layer workers when layers are indexed in parallel.
// A fetch function can still be plugged in (tests use it to redirect hosts); Response fits HttpResponse.
import { Buffer } from 'node:buffer';
import http, { type ClientRequest, type IncomingMessage } from 'node:http';
import https from 'node:https';

export interface HttpBody extends AsyncIterable<Uint8Array> {
  /** Discards the rest of the body. */
  cancel(): Promise<void>;
}

/** What the registry client reads from a response: the part of fetch's Response it uses. */
export interface HttpResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly headers: { get(name: string): string | null; has(name: string): boolean };
  readonly body: HttpBody | null;
  readonly bodyUsed: boolean;
  text(): Promise<string>;
  json(): Promise<unknown>;
}

/** A request body: bytes (sent with Content-Length), or a stream (sent chunked, with backpressure). */
export type HttpRequestBody = Uint8Array | AsyncIterable<Uint8Array>;

export interface HttpRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: HttpRequestBody;
  signal?: AbortSignal;
  /** `manual` hands 3xx responses back; `follow` follows them (credentials only to the same origin, never https to http). */
  redirect: 'manual' | 'follow';
  /** The caller reads the whole (small) body: the exchange deadline covers it too. */
  wholeBody?: boolean;
}

export type HttpTransport = (url: URL, request: HttpRequest) => Promise<HttpResponse>;

export function isRedirectStatus(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

/** A fetch function as a transport (a fetch Response already has everything HttpResponse names). */
export function fetchTransport(fetchImpl: typeof fetch): HttpTransport {
  return async (url, request) =>
    (await fetchImpl(url, {
      method: request.method,
      headers: request.headers,
      body:
        request.body instanceof Uint8Array ? asArrayBufferView(request.body) : request.body ? ReadableStream.from(request.body) : undefined,
      ...(request.body && !(request.body instanceof Uint8Array) ? { duplex: 'half' } : {}),
      redirect: request.redirect,
      signal: request.signal,
    } as RequestInit)) as unknown as HttpResponse;
}

function asArrayBufferView(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
}

/**
 * How long an exchange may take. A server can hold a build in three ways, each with its own bound: by
 * saying nothing (`idleMs`), by trickling the response head or a small body (`exchangeMs`, a deadline for
 * everything up to the response headers and, for bodies read whole such as manifests, error bodies and
 * tokens, until the body's end), and by trickling a large body (`minBytesPerSecond` over every
 * `throughputWindowMs` the reader spent waiting for the server: time the reader itself is busy does not
 * count, so a slow consumer never fails a fast server, and a long download at a healthy rate is never cut).
 */
export interface HttpTimeouts {
  /** A connection not established by then fails (undici's connect timeout; the OS would wait ~2 min). */
  connectMs: number;
  /** A socket that sends nothing for this long fails the exchange (as undici's body timeout does). */
  idleMs: number;
  /** Request sent → response headers, and → end of a body read whole; an uploaded body adds its time at `minBytesPerSecond`. */
  exchangeMs: number;
  /** A streamed body slower than this, measured over the reader's waiting time, fails. */
  minBytesPerSecond: number;
  throughputWindowMs: number;
}

export const DEFAULT_HTTP_TIMEOUTS: HttpTimeouts = {
  connectMs: 10_000,
  idleMs: 300_000,
  exchangeMs: 300_000,
  minBytesPerSecond: 16 * 1024,
  throughputWindowMs: 60_000,
};

const MAX_REDIRECTS = 10;
/** Bodies up to this size are drained on cancel, keeping the connection; larger ones close it. */
const DRAIN_LIMIT = 64 * 1024;
const DRAIN_TIMEOUT_MS = 5_000;

function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { code: 'ETIMEDOUT' });
}

/** An https origin redirecting to plain http would expose the request (and what follows) to the network. */
export function isDowngrade(from: URL, to: URL): boolean {
  return from.protocol === 'https:' && to.protocol !== 'https:';
}

/** node:http(s) with the given timeouts (the defaults where not given). */
export function createNodeTransport(overrides: Partial<HttpTimeouts> = {}): HttpTransport {
  const timeouts = { ...DEFAULT_HTTP_TIMEOUTS, ...overrides };
  return async (url, request) => {
    let current = url;
    let headers = request.headers ?? {};
    for (let hop = 0; ; hop++) {
      const response = await exchangeOnLiveConnection(current, { ...request, headers }, timeouts);
      const location = response.headers.get('location');
      if (request.redirect === 'manual' || !location || !isRedirectStatus(response.status)) return response;
      await response.body?.cancel();
      if (hop >= MAX_REDIRECTS) throw new Error('too many redirects');
      const next = new URL(location, current);
      if (isDowngrade(current, next))
        throw Object.assign(new Error(`refusing redirect from ${current.origin} to ${next.origin} (https to http)`), {
          code: 'ERR_REDIRECT_DOWNGRADE',
        });
      if (next.origin !== current.origin) {
        const { authorization: _dropped, ...rest } = headers;
        headers = rest;
      }
      current = next;
    }
  };
}

export const nodeTransport: HttpTransport = createNodeTransport();

/** Methods RFC 9110 calls idempotent: sending one again cannot do anything the first did not. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS']);

/**
 * One exchange, sent once more on a fresh connection when a kept-alive connection turns out to have been
 * closed by the server while it sat idle (reset or closed before any response byte). That race is the
 * client's, not a registry failure: the server never saw the request, so it is not a retry and costs no
 * attempt of the caller's budget (a client with `retry: { attempts: 1 }` must not fail on it). As Node's
 * documentation, undici and Go's net/http do, only for idempotent requests whose body can be sent again.
 */
async function exchangeOnLiveConnection(url: URL, request: HttpRequest, timeouts: HttpTimeouts): Promise<HttpResponse> {
  try {
    return await exchange(url, request, timeouts);
  } catch (err) {
    const replayable = request.body === undefined || request.body instanceof Uint8Array;
    if (
      !(err as { staleConnection?: boolean }).staleConnection ||
      !replayable ||
      !IDEMPOTENT.has(request.method ?? 'GET') ||
      request.signal?.aborted
    )
      throw err;
    return exchange(url, request, timeouts, { fresh: true });
  }
}

/** A new connection for one request (not pooled), so a second stale pooled socket cannot be picked. */
const freshAgents = { http: new http.Agent({ keepAlive: false }), https: new https.Agent({ keepAlive: false }) };

const STALE_CONNECTION_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

function exchange(url: URL, request: HttpRequest, timeouts: HttpTimeouts, how: { fresh?: boolean } = {}): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    const secure = url.protocol === 'https:';
    if (!secure && url.protocol !== 'http:') {
      reject(new Error(`unsupported URL scheme ${url.protocol}`));
      return;
    }
    const headers: Record<string, string> = { ...request.headers };
    const body = request.body;
    if (body instanceof Uint8Array) headers['content-length'] = String(body.length);
    const req = (secure ? https : http).request(url, {
      method: request.method ?? 'GET',
      headers,
      // The global agents keep connections alive (Node >= 19) and, on a Node with built-in proxy support
      // run with NODE_USE_ENV_PROXY=1 or --use-env-proxy, go through HTTP(S)_PROXY as fetch then does.
      signal: request.signal,
      timeout: timeouts.idleMs,
      ...(how.fresh && { agent: secure ? freshAgents.https : freshAgents.http }),
    });
    let responded = false;
    // Bytes given up front count at the minimum rate; a streamed body (an upload of any size, bounded by
    // the idle timeout) starts the deadline once it has been sent.
    const exchangeMs = timeouts.exchangeMs + (body instanceof Uint8Array ? (body.length / timeouts.minBytesPerSecond) * 1000 : 0);
    let deadlineTarget: { destroy(err: Error): void } = req;
    let deadline: NodeJS.Timeout | undefined;
    let settledDeadline = false;
    const startDeadline = () => {
      if (settledDeadline || deadline !== undefined) return;
      deadline = setTimeout(
        () => deadlineTarget.destroy(timeoutError(`no complete response in ${Math.round(exchangeMs / 1000)} s`)),
        exchangeMs,
      );
      deadline.unref(); // the socket keeps the process alive while the exchange is under way, not this timer
    };
    const clearDeadline = () => {
      settledDeadline = true;
      clearTimeout(deadline);
    };
    req.on('timeout', () => req.destroy(timeoutError(`no data for ${timeouts.idleMs / 1000} s`)));
    req.on('socket', (socket) => {
      if (!socket.connecting) return; // a kept-alive connection
      const timer = setTimeout(() => req.destroy(timeoutError(`no connection in ${timeouts.connectMs / 1000} s`)), timeouts.connectMs);
      socket.once(secure ? 'secureConnect' : 'connect', () => clearTimeout(timer));
      socket.once('close', () => clearTimeout(timer));
    });
    req.on('error', (err) => {
      clearDeadline();
      // A pooled connection the server had already closed: nothing of this request reached it.
      if (req.reusedSocket && !responded && STALE_CONNECTION_CODES.has((err as NodeJS.ErrnoException).code ?? ''))
        Object.assign(err, { staleConnection: true });
      reject(err);
    });
    req.on('close', () => {
      if (deadlineTarget === req) clearDeadline();
    });
    req.on('response', (res) => {
      responded = true;
      const status = res.statusCode ?? 0;
      // Bodies read whole (asked for, or any non-2xx: error bodies and redirects are small) stay under the deadline.
      if (request.wholeBody || status < 200 || status >= 300) {
        deadlineTarget = res;
        startDeadline(); // (already running unless answered before a streamed body was all sent)
        res.once('close', clearDeadline);
        res.once('end', clearDeadline);
      } else {
        clearDeadline();
      }
      resolve(new NodeResponse(res, timeouts));
    });
    if (body === undefined || body instanceof Uint8Array) {
      startDeadline();
      req.end(body);
    } else {
      pump(req, body).then(startDeadline, (err: unknown) => req.destroy(err as Error));
    }
  });
}

/** Writes a streamed body, waiting for the socket to drain so memory holds about one piece at a time. */
async function pump(req: ClientRequest, body: AsyncIterable<Uint8Array>): Promise<void> {
  for await (const piece of body) {
    if (req.destroyed) return; // leaving the loop releases the source
    if (!req.write(piece)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          req.off('drain', done);
          req.off('close', done);
          resolve();
        };
        req.once('drain', done);
        req.once('close', done);
      });
    }
  }
  if (!req.destroyed) req.end();
}

class NodeResponse implements HttpResponse {
  readonly status: number;
  readonly ok: boolean;
  readonly headers: NodeHeaders;
  readonly body: HttpBody;
  private used = false;

  constructor(
    private readonly res: IncomingMessage,
    private readonly timeouts: HttpTimeouts,
  ) {
    // A connection that fails before anyone reads the body must not crash the process; whoever reads
    // it gets the error from the iterator.
    res.on('error', () => undefined);
    this.status = res.statusCode ?? 0;
    this.ok = this.status >= 200 && this.status < 300;
    this.headers = new NodeHeaders(res.headers);
    const self = this;
    this.body = {
      [Symbol.asyncIterator]() {
        self.used = true;
        return self.metered(res[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>);
      },
      cancel() {
        self.used = true;
        return self.discard();
      },
    };
  }

  /**
   * The body's chunks, failing when the server delivers less than `minBytesPerSecond` over a window of
   * time the reader spent waiting for it (see HttpTimeouts).
   */
  private metered(inner: AsyncIterator<Uint8Array>): AsyncIterator<Uint8Array> {
    const { minBytesPerSecond, throughputWindowMs } = this.timeouts;
    const { res } = this;
    let waited = 0;
    let bytes = 0;
    return {
      async next() {
        const started = performance.now();
        const result = await inner.next();
        if (result.done) return result;
        waited += performance.now() - started;
        bytes += result.value.length;
        if (waited >= throughputWindowMs) {
          if (bytes < (minBytesPerSecond * waited) / 1000) {
            const error = timeoutError(
              `response body arrives at ${Math.round(bytes / (waited / 1000))} bytes/s, below the ${minBytesPerSecond} bytes/s minimum`,
            );
            res.destroy(error);
            throw error;
          }
          waited = 0;
          bytes = 0;
        }
        return result;
      },
      async return(value?: unknown) {
        return (await inner.return?.(value)) ?? { done: true, value: undefined };
      },
    };
  }

  get bodyUsed(): boolean {
    return this.used;
  }

  async text(): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  /**
   * Drains a small body (a redirect's or an error's) so the connection serves the next request, and
   * closes the connection under a large or unbounded one (an abandoned blob).
   */
  private async discard(): Promise<void> {
    const { res } = this;
    if (res.readableEnded || res.destroyed) return;
    // A body already received in full only needs reading out: the socket returns to the pool at its end.
    const declared = res.headers['content-length'];
    const small = res.complete || (declared !== undefined ? Number(declared) <= DRAIN_LIMIT : !this.ok);
    if (!small) {
      res.destroy();
      return;
    }
    await new Promise<void>((resolve) => {
      const stalled = setTimeout(() => res.destroy(), DRAIN_TIMEOUT_MS); // a slow small body is not worth waiting for
      const done = () => {
        clearTimeout(stalled);
        resolve();
      };
      res.once('end', done);
      res.once('close', done);
      res.resume();
    });
  }
}

class NodeHeaders {
  constructor(private readonly raw: IncomingMessage['headers']) {}

  get(name: string): string | null {
    const value = this.raw[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  }

  has(name: string): boolean {
    return this.raw[name.toLowerCase()] !== undefined;
  }
}
