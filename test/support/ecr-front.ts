// An Amazon ECR-like front for tests: a loopback HTTP server in front of a fault proxy (which adds the
// referrers API and redirects blob GETs with 307 to a second origin that rejects Authorization, as ECR
// does to S3) in front of a real docker-registry. It reproduces ECR's wire quirks (ecr-facts):
// - upload PATCH answers 201 (not 202), and `Range` stops advancing after the first PATCH; a part below
//   5 MiB followed by another PATCH is refused (LayerPartTooSmallException); POST may announce
//   OCI-Chunk-Min-Length;
// - immutable repositories: a manifest PUT to an existing tag is 400 TAG_INVALID, even for the same digest,
//   unless the tag matches an exclusion filter (IMMUTABLE_WITH_EXCLUSION);
// - a manifest GET/HEAD by tag whose Accept lacks the stored media type is converted (new bytes, new
//   digest) or, where it cannot be, 404; by digest it is never converted;
// - manifest PUTs beyond a rate (token bucket) are answered 429 TOOMANYREQUESTS.
import { createHash } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { type FaultProxy, startFaultProxy } from './fault-proxy.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const ALL_MANIFEST_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST].join(', ');
/** OCI ↔ Docker media types, as ECR converts them. */
const CONVERSIONS: Record<string, string> = {
  [OCI_MANIFEST]: DOCKER_MANIFEST,
  [OCI_INDEX]: DOCKER_LIST,
  'application/vnd.oci.image.config.v1+json': 'application/vnd.docker.container.image.v1+json',
  'application/vnd.oci.image.layer.v1.tar+gzip': 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.oci.image.layer.v1.tar': 'application/vnd.docker.image.rootfs.diff.tar',
};
for (const [from, to] of Object.entries({ ...CONVERSIONS })) CONVERSIONS[to] = from;

export const ECR_MIN_PART_BYTES = 5 * 1024 * 1024;

export interface EcrFrontRequest {
  method: string;
  path: string;
  /** For manifest GET/HEAD: the Accept header as sent (undefined when absent). */
  accept?: string;
  contentRange?: string;
  /** Body bytes of a PATCH or PUT. */
  bodyBytes: number;
  status?: number;
  /** Set when the front answered itself: `throttled`, `immutable`, `converted`, `not-accepted`, `part-too-small`. */
  quirk?: string;
}

export interface EcrFrontOptions {
  /** `host:port` of the docker-registry behind. */
  upstream: string;
  /** Repositories with immutable tags: name → exclusion filters (ECR wildcards, `*` any run). */
  immutable?: Record<string, string[]>;
  /** A manifest GET/HEAD by tag whose Accept lacks the stored type: `convert` (ECR) or `not-found`. */
  narrowAccept?: 'convert' | 'not-found';
  /** Manifest PUTs allowed per second (burst of the same size, at least 1); beyond it 429. Default: unlimited. */
  manifestPutsPerSecond?: number;
  /** Announced on every upload POST as OCI-Chunk-Min-Length. */
  chunkMinLength?: number;
  /** Every PATCH but a session's last must be at least this big (default ECR's 5 MiB). */
  minPartBytes?: number;
}

export interface EcrFront {
  /** `127.0.0.1:<port>` */
  host: string;
  /** The fault proxy behind (307 redirects on, referrers API on), for its own fault injection. */
  proxy: FaultProxy;
  requests: EcrFrontRequest[];
  options: EcrFrontOptions;
  stop(): Promise<void>;
}

const MANIFEST = /^\/v2\/(.+)\/manifests\/([^/]+)$/;
const UPLOAD_SESSION = /^\/v2\/(.+)\/blobs\/uploads\/([^/?]+)$/;
const UPLOAD_START = /^\/v2\/(.+)\/blobs\/uploads\/?$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** ECR wildcard filter (`^[0-9a-zA-Z._*-]{1,128}$`, `*` = any run of characters) as a RegExp. */
function wildcard(filter: string): RegExp {
  return new RegExp(`^${filter.replace(/[.]/g, '\\.').replace(/\*/g, '.*')}$`);
}

function accepted(accept: string | undefined): string[] {
  return (accept ?? '')
    .split(',')
    .map((t) => t.split(';')[0]!.trim().toLowerCase())
    .filter((t) => t !== '');
}

function errorBody(code: string, message: string): string {
  return JSON.stringify({ errors: [{ code, message, detail: null }] });
}

/** An OCI manifest or index with every convertible media type swapped to its Docker twin, or back. */
function convert(bytes: Buffer): Buffer {
  const doc = JSON.parse(bytes.toString('utf8')) as Record<string, unknown> & {
    config?: { mediaType?: string };
    layers?: { mediaType?: string }[];
    manifests?: { mediaType?: string }[];
  };
  const swap = (d: { mediaType?: string } | undefined) => {
    if (d?.mediaType && CONVERSIONS[d.mediaType]) d.mediaType = CONVERSIONS[d.mediaType];
  };
  if (typeof doc.mediaType === 'string') doc.mediaType = CONVERSIONS[doc.mediaType] ?? doc.mediaType;
  swap(doc.config);
  for (const d of doc.layers ?? []) swap(d);
  for (const d of doc.manifests ?? []) swap(d);
  return Buffer.from(JSON.stringify(doc, null, 3));
}

export async function startEcrFront(options: EcrFrontOptions): Promise<EcrFront> {
  const proxy = await startFaultProxy({ upstream: options.upstream, referrers: true });
  proxy.redirectBlobs(true);
  const [hostname, port] = proxy.host.split(':') as [string, string];
  const requests: EcrFrontRequest[] = [];
  /** Per upload session: the Range of its first PATCH (ECR's stops there) and the size of its last part. */
  const sessions = new Map<string, { firstRange?: string; lastPart: number }>();
  const burst = Math.max(1, options.manifestPutsPerSecond ?? Infinity);
  let tokens = burst;
  let refilled = Date.now();
  const minPart = options.minPartBytes ?? ECR_MIN_PART_BYTES;

  function upstream(
    method: string,
    path: string,
    headers: IncomingHttpHeaders,
    body?: Buffer,
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
    return new Promise((resolve, reject) => {
      // Host is kept: docker-registry builds upload Locations from it, and they must point at the front.
      const { 'content-length': _length, 'transfer-encoding': _te, ...rest } = headers;
      const outHeaders = body && body.length > 0 ? { ...rest, 'content-length': String(body.length) } : rest;
      const req = httpRequest({ hostname, port: Number(port), method, path, headers: outHeaders }, (res) => {
        readBody(res).then((b) => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: b }), reject);
      });
      req.on('error', reject);
      req.end(body && body.length > 0 ? body : undefined);
    });
  }

  function reply(
    res: ServerResponse,
    record: EcrFrontRequest,
    status: number,
    headers: IncomingHttpHeaders,
    body: Buffer | string,
    quirk?: string,
  ): void {
    record.status = status;
    if (quirk) record.quirk = quirk;
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    const { 'content-length': _length, 'transfer-encoding': _te, connection: _c, ...rest } = headers;
    res.writeHead(status, {
      ...rest,
      'content-length': String(record.method === 'HEAD' ? (headers['content-length'] ?? bytes.length) : bytes.length),
    });
    res.end(record.method === 'HEAD' ? undefined : bytes);
  }

  /** A registry error answer (`{"errors": [...]}`) that ECR gives itself, recorded with its quirk. */
  function replyError(res: ServerResponse, record: EcrFrontRequest, status: number, code: string, message: string, quirk: string): void {
    reply(res, record, status, { 'content-type': 'application/json' }, errorBody(code, message), quirk);
  }

  function takeToken(): boolean {
    const rate = options.manifestPutsPerSecond;
    if (rate === undefined) return true;
    const now = Date.now();
    tokens = Math.min(burst, tokens + ((now - refilled) / 1000) * rate);
    refilled = now;
    if (tokens < 1) return false;
    tokens -= 1;
    return true;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://front');
    const path = url.pathname;
    const body = await readBody(req);
    const record: EcrFrontRequest = {
      method,
      path,
      bodyBytes: body.length,
      ...(req.headers['content-range'] ? { contentRange: req.headers['content-range'] } : {}),
    };
    requests.push(record);
    const manifest = MANIFEST.exec(path);

    if (manifest && (method === 'GET' || method === 'HEAD')) {
      record.accept = req.headers.accept;
      const [, , reference] = manifest as unknown as [string, string, string];
      // Ask for everything: the front decides, as ECR does, from the stored type and the client's Accept.
      const up = await upstream(method === 'HEAD' ? 'GET' : method, path + url.search, { ...req.headers, accept: ALL_MANIFEST_TYPES });
      const stored = String(up.headers['content-type'] ?? '')
        .split(';')[0]!
        .trim();
      const wants = accepted(req.headers.accept);
      if (up.status !== 200 || DIGEST.test(reference) || wants.includes(stored) || wants.includes('*/*')) {
        const headers = method === 'HEAD' ? { ...up.headers, 'content-length': String(up.body.length) } : up.headers;
        return reply(res, record, up.status, headers, up.body);
      }
      const target = CONVERSIONS[stored];
      if (options.narrowAccept !== 'not-found' && target && wants.includes(target)) {
        const converted = convert(up.body);
        const digest = `sha256:${createHash('sha256').update(converted).digest('hex')}`;
        return reply(
          res,
          record,
          200,
          { 'content-type': target, 'docker-content-digest': digest, 'content-length': String(converted.length) },
          converted,
          'converted',
        );
      }
      return replyError(res, record, 404, 'MANIFEST_UNKNOWN', `Requested image not found (stored as ${stored})`, 'not-accepted');
    }

    if (manifest && method === 'PUT') {
      const [, repository, reference] = manifest as unknown as [string, string, string];
      if (!takeToken()) {
        return replyError(res, record, 429, 'TOOMANYREQUESTS', 'Rate exceeded', 'throttled');
      }
      const exclusions = options.immutable?.[repository];
      if (exclusions && !DIGEST.test(reference) && !exclusions.some((f) => wildcard(f).test(reference))) {
        const existing = await upstream('HEAD', path, { ...req.headers, accept: ALL_MANIFEST_TYPES });
        if (existing.status === 200) {
          return replyError(
            res,
            record,
            400,
            'TAG_INVALID',
            `The image tag '${reference}' already exists in the '${repository}' repository and cannot be overwritten because the tag is immutable.`,
            'immutable',
          );
        }
      }
    }

    const session = UPLOAD_SESSION.exec(path);
    if (session && method === 'PATCH') {
      const state = sessions.get(session[2]!) ?? { lastPart: Infinity };
      if (state.lastPart < minPart) {
        return replyError(
          res,
          record,
          400,
          'BLOB_UPLOAD_INVALID',
          `LayerPartTooSmallException: part of ${state.lastPart} bytes is below the ${minPart}-byte minimum`,
          'part-too-small',
        );
      }
      const up = await upstream(method, path + url.search, req.headers, body);
      if (up.status === 202) {
        state.lastPart = body.length;
        state.firstRange ??= String(up.headers.range ?? '');
        const location = String(up.headers.location ?? '');
        const next = UPLOAD_SESSION.exec(new URL(location, 'http://front').pathname);
        sessions.set(next?.[2] ?? session[2]!, state);
        return reply(res, record, 201, { ...up.headers, range: state.firstRange }, up.body, 'patch-201');
      }
      return reply(res, record, up.status, up.headers, up.body);
    }

    if (UPLOAD_START.test(path) && method === 'POST' && options.chunkMinLength !== undefined) {
      const up = await upstream(method, path + url.search, req.headers, body);
      return reply(
        res,
        record,
        up.status,
        up.status === 202 ? { ...up.headers, 'oci-chunk-min-length': String(options.chunkMinLength) } : up.headers,
        up.body,
      );
    }

    const up = await upstream(method, path + url.search, req.headers, body);
    reply(res, record, up.status, up.headers, up.body);
  }

  const server = createServer(
    (req, res) =>
      void handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(502).end(String(err));
        else res.destroy();
      }),
  );
  const frontPort = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
  return {
    host: `127.0.0.1:${frontPort}`,
    proxy,
    requests,
    options,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await proxy.stop();
    },
  };
}
