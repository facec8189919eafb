// A loopback HTTP proxy in front of a registry that misbehaves on request: drops blob downloads after N
// bytes, answers 429/503 a given number of times, redirects blob GETs to a second port (as ECR redirects
// to S3) that rejects requests carrying Authorization, counts the bytes it serves per path, and can add
// the OCI referrers API that docker-registry 2.8 lacks (records subjects on manifest PUT, adds OCI-Subject),
// and holds the reads of a chosen blob until the test lets them go (a build stalled mid-layer, on cue).
import { createHash } from 'node:crypto';
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';

export interface ProxiedRequest {
  server: 'proxy' | 'redirect';
  method: string;
  path: string;
  /** The query string, `?…` or empty. */
  search: string;
  authorization: boolean;
  range?: string;
  status?: number;
  /** When the request arrived (performance.now() ms), for asserting waits between attempts. */
  at: number;
}

export interface FaultProxyOptions {
  /** `host:port` of the registry behind the proxy. */
  upstream: string;
  /** Answer `GET /v2/<name>/referrers/<digest>` and add OCI-Subject to manifest PUTs with a subject. */
  referrers?: boolean;
  /** Rewrite absolute `Location` headers to origin-relative paths (as some registries send them). */
  relativeLocations?: boolean;
  /** Sees every request first; returns true when it answered the request itself (e.g. a token-auth gate). */
  gate?: (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;
  /**
   * Keep idle connections open this long (Node's default closes them after 5 s; 0 = never, as
   * docker-registry and most registries do), so a client that leaves a response unread is caught.
   */
  keepAliveTimeoutMs?: number;
}

export interface FaultProxy {
  /** `127.0.0.1:<port>` */
  host: string;
  url: string;
  /** `127.0.0.1:<port>` of the redirect target (the "S3" side). */
  redirectHost: string;
  requests: ProxiedRequest[];
  /** The next `times` blob downloads (on either port) are cut off after `bytes` bytes of body. */
  dropBlobAfter(bytes: number, times?: number): void;
  /** The next `times` requests matching `method`/`path` get `status` (with Retry-After when given). */
  failNext(status: number, times: number, options?: { retryAfter?: string; method?: string; path?: RegExp }): void;
  /** The next `times` ranged blob GETs are forwarded without their Range header (answered 200, whole blob). */
  ignoreRangeNext(times?: number): void;
  /** The next `times` blob downloads have their first byte flipped (content no longer matches the digest). */
  corruptBlobs(times?: number): void;
  /**
   * Every GET of blob `digest` waits (before reaching the registry) until `release()`: the slowest possible
   * blob read, ended by the test, so it can act while a build is stuck in that layer. `held` resolves when
   * the first such read is waiting.
   */
  holdBlob(digest: string): BlobHold;
  /** While on, blob GETs answer 307 to the redirect port. */
  redirectBlobs(on: boolean): void;
  /**
   * Forgets the requests seen and every fault still queued (drops, failures, ignored ranges, corruptions,
   * redirecting), so a test that failed before using up its faults leaves none to the next one.
   */
  reset(): void;
  /** Body bytes served for `path` (either port; the redirect port is keyed by the original blob path), or in total. */
  bytesServed(path?: string): number;
  stop(): Promise<void>;
}

export interface BlobHold {
  held: Promise<void>;
  release(): void;
}

interface FailRule {
  status: number;
  remaining: number;
  retryAfter?: string;
  method?: string;
  path?: RegExp;
}

interface Referrer {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

const BLOB_GET = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/;
const MANIFEST_PUT = /^\/v2\/(.+)\/manifests\/[^/]+$/;
const REFERRERS = /^\/v2\/(.+)\/referrers\/(sha256:[a-f0-9]{64})$/;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function withoutRange(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const { range: _range, ...rest } = headers;
  return rest;
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const requests: ProxiedRequest[] = [];
  const served = new Map<string, number>();
  const failRules: FailRule[] = [];
  const drops: { bytes: number; remaining: number }[] = [];
  let corruptions = 0;
  let rangesToIgnore = 0;
  const referrers = new Map<string, Referrer[]>();
  // Redirect tickets stand in for S3's presigned URLs: the proxy remembers the original request's headers.
  const tickets = new Map<string, { path: string; headers: IncomingHttpHeaders }>();
  let redirecting = false;
  const holds: { digest: string; arrived: () => void; released: Promise<void>; release: () => void; open: boolean }[] = [];
  const upstreamAddress = { hostname: options.upstream.split(':')[0], port: Number(options.upstream.split(':')[1]) };
  let redirectPort = 0;

  function forward(
    res: ServerResponse,
    method: string,
    path: string,
    headers: IncomingHttpHeaders,
    body: Buffer,
    record: ProxiedRequest,
    countAs: string,
    adjust?: (status: number, headers: IncomingHttpHeaders) => void,
  ): void {
    const upstream = httpRequest({ ...upstreamAddress, method, path, headers }, (up) => {
      const status = up.statusCode ?? 502;
      record.status = status;
      const outHeaders = { ...up.headers };
      adjust?.(status, outHeaders);
      res.writeHead(status, outHeaders);
      const isBlobBody = method === 'GET' && BLOB_GET.test(countAs) && (status === 200 || status === 206);
      const drop = isBlobBody ? drops.find((d) => d.remaining > 0) : undefined;
      if (drop) drop.remaining--;
      let corrupt = isBlobBody && corruptions > 0;
      if (corrupt) corruptions--;
      let sent = 0;
      up.on('data', (chunk: Buffer) => {
        if (res.destroyed) return;
        if (corrupt && chunk.length > 0) {
          chunk = Buffer.from(chunk);
          chunk[0]! ^= 0xff;
          corrupt = false;
        }
        const allowed = drop ? Math.min(chunk.length, drop.bytes - sent) : chunk.length;
        const cut = drop !== undefined && sent + allowed >= drop.bytes;
        if (cut) up.destroy();
        // Cut only after the allowed bytes are flushed, so the client sees exactly `drop.bytes`.
        if (allowed > 0 || cut) res.write(chunk.subarray(0, allowed), () => cut && res.socket?.destroy());
        sent += allowed;
        served.set(countAs, (served.get(countAs) ?? 0) + allowed);
      });
      up.on('end', () => res.end());
      up.on('error', () => res.destroy());
    });
    upstream.on('error', () => res.destroy());
    upstream.end(body);
  }

  function upstreamStatus(method: string, path: string, headers: IncomingHttpHeaders): Promise<number> {
    return new Promise((resolve, reject) => {
      const probe = httpRequest({ ...upstreamAddress, method, path, headers }, (up) => {
        up.resume();
        resolve(up.statusCode ?? 502);
      });
      probe.on('error', reject);
      probe.end();
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://proxy');
    const record: ProxiedRequest = {
      server: 'proxy',
      method,
      path: url.pathname,
      search: url.search,
      authorization: req.headers.authorization !== undefined,
      range: req.headers.range,
      at: performance.now(),
    };
    requests.push(record);
    if (options.gate && (await options.gate(req, res))) return;
    const body = await readBody(req);
    const heldBlob = method === 'GET' ? BLOB_GET.exec(url.pathname)?.[2] : undefined;
    const hold = heldBlob === undefined ? undefined : holds.find((h) => h.open && h.digest === heldBlob);
    if (hold) {
      hold.arrived();
      await hold.released;
    }

    const rule = failRules.find((r) => r.remaining > 0 && (!r.method || r.method === method) && (!r.path || r.path.test(url.pathname)));
    if (rule) {
      rule.remaining--;
      record.status = rule.status;
      res.writeHead(rule.status, { 'content-type': 'application/json', ...(rule.retryAfter ? { 'retry-after': rule.retryAfter } : {}) });
      res.end(JSON.stringify({ errors: [{ code: rule.status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE', message: 'injected' }] }));
      return;
    }

    const referrersMatch = options.referrers && method === 'GET' ? REFERRERS.exec(url.pathname) : null;
    if (referrersMatch) {
      const artifactType = url.searchParams.get('artifactType');
      const all = referrers.get(`${referrersMatch[1]}@${referrersMatch[2]}`) ?? [];
      const manifests = artifactType === null ? all : all.filter((r) => r.artifactType === artifactType);
      record.status = 200;
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.index.v1+json',
        ...(artifactType === null ? {} : { 'oci-filters-applied': 'artifactType' }),
      });
      res.end(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
      return;
    }

    const blobMatch = method === 'GET' ? BLOB_GET.exec(url.pathname) : null;
    // Like ECR, authenticate (and check existence) before redirecting; otherwise pass the answer through.
    if (blobMatch && redirecting && (await upstreamStatus('HEAD', url.pathname, withoutRange(req.headers))) === 200) {
      const ticket = createHash('sha256').update(`${Math.random()}${Date.now()}`).digest('hex').slice(0, 16);
      tickets.set(ticket, { path: url.pathname + url.search, headers: req.headers });
      record.status = 307;
      res.writeHead(307, { location: `http://127.0.0.1:${redirectPort}/s3/${ticket}/${blobMatch[2]}?X-Amz-Signature=fake` });
      res.end();
      return;
    }

    const manifestPut = options.referrers && method === 'PUT' ? MANIFEST_PUT.exec(url.pathname) : null;
    let headers = req.headers;
    if (blobMatch && headers.range && rangesToIgnore > 0) {
      rangesToIgnore--;
      headers = withoutRange(headers);
    }
    forward(res, method, url.pathname + url.search, headers, body, record, url.pathname, (status, headers) => {
      if (options.relativeLocations && typeof headers.location === 'string')
        headers.location = headers.location.replace(/^https?:\/\/[^/]+/, '');
      if (!manifestPut || status !== 201) return;
      let manifest: {
        subject?: { digest?: string };
        artifactType?: string;
        config?: { mediaType?: string };
        annotations?: Record<string, string>;
      };
      try {
        manifest = JSON.parse(body.toString('utf8'));
      } catch {
        return;
      }
      const subject = manifest.subject?.digest;
      const digest = headers['docker-content-digest'];
      if (!subject || typeof digest !== 'string') return;
      const key = `${manifestPut[1]}@${subject}`;
      const list = referrers.get(key) ?? [];
      if (!list.some((r) => r.digest === digest)) {
        const artifactType = manifest.artifactType ?? manifest.config?.mediaType;
        list.push({
          mediaType: req.headers['content-type'] ?? '',
          digest,
          size: body.length,
          ...(artifactType ? { artifactType } : {}),
          ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
        });
      }
      referrers.set(key, list);
      headers['oci-subject'] = subject;
    });
  }

  async function handleRedirected(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://s3');
    const record: ProxiedRequest = {
      server: 'redirect',
      method: req.method ?? 'GET',
      path: url.pathname,
      search: url.search,
      authorization: req.headers.authorization !== undefined,
      range: req.headers.range,
      at: performance.now(),
    };
    requests.push(record);
    await readBody(req);
    const ticket = tickets.get(url.pathname.split('/')[2] ?? '');
    // S3 rejects a presigned request that also carries an Authorization header.
    if (req.headers.authorization !== undefined || !ticket) {
      record.status = 400;
      res.writeHead(400, { 'content-type': 'application/xml' });
      res.end('<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed</Message></Error>');
      return;
    }
    const headers = withoutRange(ticket.headers);
    if (req.headers.range) headers.range = req.headers.range;
    forward(res, 'GET', ticket.path, headers, Buffer.alloc(0), record, ticket.path.split('?')[0]!);
  }

  const onError = (res: ServerResponse) => (err: unknown) => {
    if (!res.headersSent) res.writeHead(500).end(String(err));
    else res.destroy();
  };
  const proxy = createServer((req, res) => void handle(req, res).catch(onError(res)));
  const redirect = createServer((req, res) => void handleRedirected(req, res).catch(onError(res)));
  if (options.keepAliveTimeoutMs !== undefined) proxy.keepAliveTimeout = options.keepAliveTimeoutMs;
  const port = await listen(proxy);
  redirectPort = await listen(redirect);

  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    redirectHost: `127.0.0.1:${redirectPort}`,
    requests,
    dropBlobAfter(bytes, times = 1) {
      drops.push({ bytes, remaining: times });
    },
    failNext(status, times, rule = {}) {
      failRules.push({ status, remaining: times, ...rule });
    },
    ignoreRangeNext(times = 1) {
      rangesToIgnore += times;
    },
    corruptBlobs(times = 1) {
      corruptions += times;
    },
    holdBlob(digest) {
      let arrived!: () => void;
      let release!: () => void;
      const held = new Promise<void>((resolve) => (arrived = resolve));
      const released = new Promise<void>((resolve) => (release = resolve));
      const hold = { digest, arrived, released, open: true, release: () => {} };
      hold.release = () => {
        hold.open = false;
        release();
      };
      holds.push(hold);
      return { held, release: hold.release };
    },
    redirectBlobs(on) {
      redirecting = on;
    },
    reset() {
      requests.length = 0;
      failRules.length = 0;
      drops.length = 0;
      corruptions = 0;
      rangesToIgnore = 0;
      redirecting = false;
    },
    bytesServed(path) {
      return path === undefined ? [...served.values()].reduce((a, b) => a + b, 0) : (served.get(path) ?? 0);
    },
    async stop() {
      for (const hold of holds) hold.release();
      for (const server of [proxy, redirect]) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  };
}
