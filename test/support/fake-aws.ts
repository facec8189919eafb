// Loopback fakes of the two AWS control-plane calls the Lambda makes: ECR GetAuthorizationToken and
// EventBridge PutEvents. They are real HTTP servers speaking the awsJson1.1 protocol, so the real SDK
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
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': randomUUID() });
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
      if (req.method !== 'POST' || !handler) return reply(400, { __type: 'UnknownOperationException', message: `unknown target ${target}` });
      if (!String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256 ')) {
        return reply(403, { __type: 'MissingAuthenticationTokenException', message: 'request is not signed' });
      }
      const pending = faults.find((f) => f.operation === operation && f.left > 0);
      if (pending) {
        pending.left--;
        return reply(pending.fault.status, { __type: pending.fault.type, message: pending.fault.message ?? pending.fault.type });
      }
      reply(200, handler(body));
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
}

/** ECR's control plane, GetAuthorizationToken only: base64 `user:password`, expiry, proxyEndpoint. */
export function startFakeEcr(options: FakeEcrOptions): Promise<FakeAwsServer> {
  return startAwsJsonServer('AmazonEC2ContainerRegistry_V20150921', {
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
}

/** EventBridge PutEvents, recording each entry; `rejectEntries` makes it answer a per-entry failure. */
export async function startFakeEventBridge(): Promise<FakeEventBridge & { rejectEntries(times: number): void }> {
  const events: RecordedEvent[] = [];
  let rejections = 0;
  const server = await startAwsJsonServer('AWSEvents', {
    PutEvents: (body) => {
      const entries = (body.Entries ?? []) as Record<string, unknown>[];
      if (rejections > 0) {
        rejections--;
        return { FailedEntryCount: entries.length, Entries: entries.map(() => ({ ErrorCode: 'InternalFailure', ErrorMessage: 'injected entry failure' })) };
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
