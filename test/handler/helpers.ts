// Shared pieces of the handler tests: sample events, a Lambda context, and log/metric capture.
// Powertools writes through the global console in dev mode (POWERTOOLS_DEV), which a test can capture
// without touching process.stdout (the test runner's own channel); metrics stay on with
// POWERTOOLS_METRICS_DISABLED=false.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import { repoRoot } from '../support/golden.ts';

export function enablePowertoolsCapture(): void {
  process.env.POWERTOOLS_DEV = 'true';
  process.env.POWERTOOLS_METRICS_DISABLED = 'false';
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
}

export type Fixture =
  | 'ecr-push-image'
  | 'ecr-push-docker-image'
  | 'ecr-push-index'
  | 'ecr-push-untagged-child'
  | 'ecr-push-soci-output'
  | 'ecr-push-soci-index-artifact'
  | 'ecr-push-signature'
  | 'ecr-push-sbom'
  | 'ecr-image-scan'
  | 'ecr-delete-image'
  | 'ecr-push-failed';

/** A sample event from test/fixtures, optionally with detail fields replaced (undefined deletes). */
export function fixture(name: Fixture, detail: Record<string, unknown> = {}): Record<string, unknown> {
  const event = JSON.parse(readFileSync(join(repoRoot, 'test', 'fixtures', `${name}.json`), 'utf8')) as Record<string, unknown>;
  const merged = { ...(event.detail as Record<string, unknown>), ...detail };
  for (const [key, value] of Object.entries(merged)) if (value === undefined) delete merged[key];
  return { ...event, detail: merged };
}

export function lambdaContext(remainingMs = 900_000): Pick<Context, 'getRemainingTimeInMillis'> & Partial<Context> {
  const end = Date.now() + remainingMs;
  return {
    functionName: 'soci-indexer',
    functionVersion: '$LATEST',
    awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef',
    memoryLimitInMB: '2048',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:soci-indexer',
    getRemainingTimeInMillis: () => Math.max(0, end - Date.now()),
  };
}

/** Everything Powertools printed: log entries (parsed JSON) and EMF metric blobs. */
export interface Captured {
  logs: Record<string, unknown>[];
  emf: Record<string, unknown>[];
  /** The raw text, for "never prints X" checks. */
  text: string;
}

const METHODS = ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const;

export async function capture<T>(fn: () => Promise<T>): Promise<Captured & { value?: T; error?: unknown }> {
  const out: Captured = { logs: [], emf: [], text: '' };
  const saved = METHODS.map((m) => console[m]);
  for (const m of METHODS) {
    console[m] = (...args: unknown[]) => {
      const line = args.map(String).join(' ');
      out.text += `${line}\n`;
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        (parsed._aws ? out.emf : out.logs).push(parsed);
      } catch {
        out.logs.push({ message: line });
      }
    };
  }
  try {
    return { ...out, value: await fn() };
  } catch (error) {
    return { ...out, error };
  } finally {
    for (const [i, m] of METHODS.entries()) console[m] = saved[i]!;
  }
}

/** Metric values by name across EMF blobs, with the blob's `reason` dimension when it has one. */
export function metricValues(emf: Record<string, unknown>[]): { name: string; value: number; reason?: string }[] {
  const values: { name: string; value: number; reason?: string }[] = [];
  for (const blob of emf) {
    const aws = blob._aws as { CloudWatchMetrics: { Metrics: { Name: string }[] }[] };
    for (const directive of aws.CloudWatchMetrics) {
      for (const { Name } of directive.Metrics) {
        const raw = blob[Name];
        for (const value of Array.isArray(raw) ? raw : [raw])
          values.push({ name: Name, value: value as number, reason: blob.reason as string | undefined });
      }
    }
  }
  return values;
}
