// Loopback fakes of the AWS control-plane calls the Lambdas make: ECR GetAuthorizationToken, the ECR
// listing API the sync uses (DescribeRepositories, DescribeImages, BatchDeleteImage), EventBridge
// PutEvents and Lambda Invoke (asynchronous). They are real HTTP servers speaking the awsJson1.1 protocol, so the real SDK
// clients (pointed here by AWS_ENDPOINT_URL_ECR / AWS_ENDPOINT_URL_EVENTBRIDGE) sign, send, parse and
// map errors exactly as against AWS. No ECR or EventBridge emulator exists for this machine (spec §7).
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface AwsCall {
  /** The operation from `X-Amz-Target`, e.g. `GetAuthorizationToken`. */
  operation: string;
  body: Record<string, unknown>;
  headers: IncomingHttpHeaders;
}

/** An error answer in the awsJson1.1 shape: `{"__type": type, "message": …}` with an HTTP status. */
export interface AwsFault {
  status: number;
  type: string;
  message?: string;
}

export interface FakeAwsServer {
  /** `http://127.0.0.1:<port>`, for AWS_ENDPOINT_URL_<SERVICE>. */
  readonly url: string;
  readonly calls: AwsCall[];
  /** Answer the next `times` calls of `operation` with `fault` instead of succeeding. */
  fail(operation: string, fault: AwsFault, times?: number): void;
  close(): Promise<void>;
}

type Handler = (body: Record<string, unknown>) => unknown;

async function startAwsJsonServer(targetPrefix: string, handlers: Record<string, Handler>): Promise<FakeAwsServer> {
  const calls: AwsCall[] = [];
  const faults: { operation: string; fault: AwsFault; left: number }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = (status: number, payload: unknown) => {
        const text = JSON.stringify(payload);
        res.writeHead(status, {
          'content-type': 'application/x-amz-json-1.1',
          'content-length': Buffer.byteLength(text),
          'x-amzn-requestid': randomUUID(),
        });
        res.end(text);
      };
      const target = String(req.headers['x-amz-target'] ?? '');
      const operation = target.startsWith(`${targetPrefix}.`) ? target.slice(targetPrefix.length + 1) : '';
      let body: Record<string, unknown> = {};
      try {
        body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>) : {};
      } catch {
        return reply(400, { __type: 'SerializationException', message: 'body is not JSON' });
      }
      calls.push({ operation, body, headers: req.headers });
      const handler = handlers[operation];
      if (req.method !== 'POST' || !handler)
        return reply(400, { __type: 'UnknownOperationException', message: `unknown target ${target}` });
      if (!String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256 ')) {
        return reply(403, { __type: 'MissingAuthenticationTokenException', message: 'request is not signed' });
      }
      const pending = faults.find((f) => f.operation === operation && f.left > 0);
      if (pending) {
        pending.left--;
        return reply(pending.fault.status, { __type: pending.fault.type, message: pending.fault.message ?? pending.fault.type });
      }
      const answer = handler(body) as { error?: AwsFault } | undefined;
      if (answer?.error)
        return reply(answer.error.status, { __type: answer.error.type, message: answer.error.message ?? answer.error.type });
      reply(200, answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    fail(operation, fault, times = 1) {
      faults.push({ operation, fault, left: times });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface FakeEcrOptions {
  /** What GetAuthorizationToken returns as the registry address, e.g. `http://127.0.0.1:5000`. */
  proxyEndpoint: string;
  username?: string;
  password: string;
  /** Token lifetime (default 12 hours, as ECR). */
  validForMs?: number;
  /**
   * What DescribeRepositories and DescribeImages list: images (digest and tags) per repository, read at
   * each call so a test can change it. BatchDeleteImage by tag removes the tag here.
   */
  repositories?: Map<string, { digest: string; tags: string[] }[]>;
}

/** ECR's paging: `maxResults` 1–1000 (more is an error, not clamped), `nextToken` an opaque offset. */
function page<T>(items: T[], body: Record<string, unknown>): { slice: T[]; nextToken?: string } | { error: AwsFault } {
  const max = body.maxResults === undefined ? 100 : Number(body.maxResults);
  if (!Number.isInteger(max) || max < 1 || max > 1000)
    return { error: { status: 400, type: 'InvalidParameterException', message: 'maxResults must be between 1 and 1000' } };
  const start = body.nextToken === undefined ? 0 : Number(Buffer.from(String(body.nextToken), 'base64url').toString());
  const slice = items.slice(start, start + max);
  return { slice, ...(start + max < items.length && { nextToken: Buffer.from(String(start + max)).toString('base64url') }) };
}

/** ECR's control plane: GetAuthorizationToken (base64 `user:password`, expiry, proxyEndpoint) and the listing API. */
export function startFakeEcr(options: FakeEcrOptions): Promise<FakeAwsServer> {
  const repositories = options.repositories ?? new Map<string, { digest: string; tags: string[] }[]>();
  return startAwsJsonServer('AmazonEC2ContainerRegistry_V20150921', {
    DescribeRepositories: (body) => {
      const paged = page([...repositories.keys()], body);
      if ('error' in paged) return paged;
      return {
        repositories: paged.slice.map((repositoryName) => ({ repositoryName })),
        ...(paged.nextToken && { nextToken: paged.nextToken }),
      };
    },
    DescribeImages: (body) => {
      const images = repositories.get(String(body.repositoryName));
      if (!images)
        return { error: { status: 400, type: 'RepositoryNotFoundException', message: `repository ${body.repositoryName} not found` } };
      const tagged =
        (body.filter as { tagStatus?: string } | undefined)?.tagStatus === 'TAGGED' ? images.filter((i) => i.tags.length > 0) : images;
      const paged = page(tagged, body);
      if ('error' in paged) return paged;
      return {
        imageDetails: paged.slice.map((i) => ({
          repositoryName: body.repositoryName,
          imageDigest: i.digest,
          ...(i.tags.length > 0 && { imageTags: i.tags }),
        })),
        ...(paged.nextToken && { nextToken: paged.nextToken }),
      };
    },
    BatchDeleteImage: (body) => {
      const images = repositories.get(String(body.repositoryName)) ?? [];
      const ids = (body.imageIds ?? []) as { imageTag?: string }[];
      const failures: unknown[] = [];
      const deleted: unknown[] = [];
      for (const id of ids) {
        const image = images.find((i) => id.imageTag !== undefined && i.tags.includes(id.imageTag));
        if (!image) {
          failures.push({ imageId: id, failureCode: 'ImageNotFound', failureReason: 'Requested image not found' });
          continue;
        }
        image.tags = image.tags.filter((t) => t !== id.imageTag);
        deleted.push({ imageTag: id.imageTag, imageDigest: image.digest });
      }
      return { imageIds: deleted, failures };
    },
    GetAuthorizationToken: () => ({
      authorizationData: [
        {
          authorizationToken: Buffer.from(`${options.username ?? 'AWS'}:${options.password}`).toString('base64'),
          // awsJson1.1 timestamps are epoch seconds.
          expiresAt: (Date.now() + (options.validForMs ?? 12 * 3600_000)) / 1000,
          proxyEndpoint: options.proxyEndpoint,
        },
      ],
    }),
  });
}

export interface RecordedEvent {
  EventBusName?: string;
  Source?: string;
  DetailType?: string;
  /** The parsed `Detail` JSON. */
  detail: Record<string, unknown>;
}

export interface FakeEventBridge extends FakeAwsServer {
  /** Every entry accepted by PutEvents, in order. */
  readonly events: RecordedEvent[];
  /** The next `times` PutEvents calls answer a per-entry failure for every entry. */
  rejectEntries(times: number): void;
}

/** EventBridge PutEvents, recording each entry; `rejectEntries` makes it answer a per-entry failure. */
export async function startFakeEventBridge(): Promise<FakeEventBridge> {
  const events: RecordedEvent[] = [];
  let rejections = 0;
  const server = await startAwsJsonServer('AWSEvents', {
    PutEvents: (body) => {
      const entries = (body.Entries ?? []) as Record<string, unknown>[];
      if (rejections > 0) {
        rejections--;
        return {
          FailedEntryCount: entries.length,
          Entries: entries.map(() => ({ ErrorCode: 'InternalFailure', ErrorMessage: 'injected entry failure' })),
        };
      }
      for (const e of entries) {
        events.push({
          EventBusName: e.EventBusName as string | undefined,
          Source: e.Source as string | undefined,
          DetailType: e.DetailType as string | undefined,
          detail: JSON.parse(String(e.Detail ?? '{}')) as Record<string, unknown>,
        });
      }
      return { FailedEntryCount: 0, Entries: entries.map(() => ({ EventId: randomUUID() })) };
    },
  });
  return Object.assign(server, {
    events,
    rejectEntries(times: number) {
      rejections += times;
    },
  });
}

export interface Invocation {
  functionName: string;
  invocationType: string | undefined;
  payload: unknown;
}

export interface FakeLambda {
  readonly url: string;
  readonly invocations: Invocation[];
  /** Requests received, throttled ones included. */
  readonly requests: number;
  /** Answer the next `times` invocations with 429 TooManyRequestsException. */
  throttle(times: number): void;
  close(): Promise<void>;
}

/**
 * Lambda's Invoke (restJson: POST /2015-03-31/functions/<name>/invocations): records each signed
 * asynchronous invocation and answers 202, as Lambda does once the event is queued.
 */
export async function startFakeLambda(): Promise<FakeLambda> {
  const invocations: Invocation[] = [];
  let throttled = 0;
  let requests = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests++;
      const reply = (status: number, type?: string) => {
        const text = type ? JSON.stringify({ Type: 'User', message: type }) : '';
        res.writeHead(status, {
          'content-type': 'application/json',
          ...(type && { 'x-amzn-errortype': type }),
          'x-amzn-requestid': randomUUID(),
        });
        res.end(text);
      };
      const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/.exec(req.url ?? '');
      if (req.method !== 'POST' || !match) return reply(404, 'ResourceNotFoundException');
      if (
        !String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256 ') ||
        !String(req.headers.authorization).includes('/lambda/aws4_request')
      ) {
        return reply(403, 'InvalidSignatureException');
      }
      if (throttled > 0) {
        throttled--;
        return reply(429, 'TooManyRequestsException');
      }
      let payload: unknown;
      try {
        payload = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reply(400, 'InvalidRequestContentException');
      }
      invocations.push({
        functionName: decodeURIComponent(match[1]!),
        invocationType: req.headers['x-amz-invocation-type'] as string | undefined,
        payload,
      });
      reply(req.headers['x-amz-invocation-type'] === 'Event' ? 202 : 200);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    invocations,
    get requests() {
      return requests;
    },
    throttle(times: number) {
      throttled += times;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
