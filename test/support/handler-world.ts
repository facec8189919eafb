// What a handler test runs against, started in one call: a real docker-registry with basic auth
// (optionally seen through the fault proxy or the ECR-like front), the loopback ECR control plane whose GetAuthorizationToken
// names it, a loopback EventBridge (and Lambda Invoke, for the sync), and the AWS_* environment that points
// the handler's SDK clients at them. Powertools output is captured (test/handler/helpers.ts).
import { enablePowertoolsCapture } from '../handler/helpers.ts';
import { type EcrFront, type EcrFrontOptions, startEcrFront } from './ecr-front.ts';
import {
  type FakeAwsServer,
  type FakeEcrOptions,
  type FakeEventBridge,
  type FakeLambda,
  startFakeEcr,
  startFakeEventBridge,
  startFakeLambda,
} from './fake-aws.ts';
import { type FaultProxy, type FaultProxyOptions, startFaultProxy } from './fault-proxy.ts';
import { type RunningRegistry, startRegistry } from './registry.ts';

export interface HandlerWorldOptions {
  /** The registry's (and ECR token's) password; the user is AWS, as ECR's. */
  password: string;
  /** Put the fault proxy between ECR's endpoint and the registry (with these options). */
  proxy?: Omit<FaultProxyOptions, 'upstream'>;
  /** Put the ECR-like front between ECR's endpoint and the registry instead (with these options). */
  ecrFront?: Omit<EcrFrontOptions, 'upstream'>;
  /** What the fake ECR API lists (the scheduled sync reads it). */
  repositories?: FakeEcrOptions['repositories'];
  /** Start a fake Lambda Invoke too (the sync fans out through it). */
  lambda?: boolean;
}

export interface HandlerWorld {
  registry: RunningRegistry;
  /** Present when asked for with `proxy`. */
  proxy?: FaultProxy;
  /** Present when asked for with `ecrFront`. */
  front?: EcrFront;
  ecr: FakeAwsServer;
  events: FakeEventBridge;
  /** Present when asked for with `lambda`. */
  lambda?: FakeLambda;
  creds: { username: string; password: string };
  /** Stops everything started, in reverse order; safe to call after a partial start. */
  stop(): Promise<void>;
}

/** Starts the world and points process.env at it; call from `before` and `world.stop()` from `after`. */
export async function startHandlerWorld(options: HandlerWorldOptions): Promise<HandlerWorld> {
  enablePowertoolsCapture();
  const creds = { username: 'AWS', password: options.password };
  const stops: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const fn of stops.reverse()) await fn();
  };
  try {
    const registry = await startRegistry({ auth: creds });
    stops.push(() => registry.stop());
    const proxy = options.proxy && (await startFaultProxy({ upstream: registry.host, ...options.proxy }));
    if (proxy) stops.push(() => proxy.stop());
    const front = options.ecrFront && (await startEcrFront({ upstream: registry.host, ...options.ecrFront }));
    if (front) stops.push(() => front.stop());
    const ecr = await startFakeEcr({
      proxyEndpoint: front ? `http://${front.host}` : proxy ? proxy.url : registry.url,
      password: options.password,
      ...(options.repositories && { repositories: options.repositories }),
    });
    stops.push(() => ecr.close());
    const events = await startFakeEventBridge();
    stops.push(() => events.close());
    const lambda = options.lambda ? await startFakeLambda() : undefined;
    if (lambda) stops.push(() => lambda.close());
    Object.assign(process.env, {
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_ENDPOINT_URL_ECR: ecr.url,
      AWS_ENDPOINT_URL_EVENTBRIDGE: events.url,
      ...(lambda && { AWS_ENDPOINT_URL_LAMBDA: lambda.url }),
    });
    return { registry, ...(proxy && { proxy }), ...(front && { front }), ecr, events, ...(lambda && { lambda }), creds, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
