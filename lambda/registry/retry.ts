// Retry policy for registry calls: exponential backoff with full jitter, bounded attempts and delay, and
// the server's Retry-After honoured (capped by the same maximum so a Lambda never sleeps unboundedly);
// never a wait past the caller's deadline, and every retry reported (throttling is counted by the Lambda).
import { statusKind } from '../oci/errors.ts';

export interface RetryOptions {
  /** Total attempts including the first (default 5). */
  attempts?: number;
  /** Backoff base in ms (default 200): attempt n waits a random time in [0, base·2^n]. */
  baseDelayMs?: number;
  /** Upper bound for any single wait, Retry-After included (default 20 000). */
  maxDelayMs?: number;
  /** Epoch ms: a wait that would end after it is not started, the failure is reported at once instead. */
  deadline?: number;
  /** Told about every retry before its wait (logs and metrics: throttling is worth counting). */
  onRetry?: (notice: RetryNotice) => void;
}

export interface RetryNotice {
  /** The failure being retried (one line, names registry and operation). */
  error: Error;
  /** The registry asked us to slow down (429 or a throttling error code). */
  throttled: boolean;
  /** 1 for the first retry. */
  retry: number;
  delayMs: number;
}

export type RetryPolicy = Required<Omit<RetryOptions, 'deadline' | 'onRetry'>> & Pick<RetryOptions, 'deadline' | 'onRetry'>;

export function retryPolicy(options: RetryOptions = {}): RetryPolicy {
  return {
    attempts: Math.max(1, options.attempts ?? 5),
    baseDelayMs: Math.max(0, options.baseDelayMs ?? 200),
    maxDelayMs: Math.max(0, options.maxDelayMs ?? 20_000),
    ...(options.deadline !== undefined && { deadline: options.deadline }),
    ...(options.onRetry && { onRetry: options.onRetry }),
  };
}

const THROTTLING_CODE = /^(TOOMANYREQUESTS|THROTTL)/i;

/** True for a registry's "slow down": 429, or a throttling error code (ECR's ThrottlingException). */
export function isThrottling(err: unknown): boolean {
  const { status, code } = (err ?? {}) as { status?: unknown; code?: unknown };
  return status === 429 || (typeof code === 'string' && THROTTLING_CODE.test(code));
}

/** Statuses worth another try (oci/errors.ts statusKind says which). */
export function isRetryableStatus(status: number): boolean {
  return statusKind(status) === 'transient';
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unparsable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** How long to wait before retry number `retry` (0 for the first retry). */
export function backoffDelay(policy: RetryPolicy, retry: number, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxDelayMs);
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  return Math.random() * ceiling;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A failure that may succeed when tried again (connection reset, 429, 5xx). */
export class RetryableError extends Error {
  override readonly name = 'RetryableError';
  constructor(
    readonly final: Error,
    readonly retryAfterMs?: number,
  ) {
    super(final.message, { cause: final });
  }
}

/**
 * Runs `attempt` until it succeeds, throws a non-retryable error, or the budget is spent; then throws the
 * last underlying error (never the RetryableError wrapper).
 */
export async function withRetry<T>(policy: RetryPolicy, signal: AbortSignal | undefined, attempt: () => Promise<T>): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof RetryableError)) throw err;
      if (n + 1 >= policy.attempts || signal?.aborted) throw err.final;
      const delayMs = backoffDelay(policy, n, err.retryAfterMs);
      if (policy.deadline !== undefined && Date.now() + delayMs >= policy.deadline) {
        // Our own fresh error: say why it was not retried (it stays as transient as it was).
        err.final.message = `${err.final.message}; not retried: the deadline is ${Math.max(0, policy.deadline - Date.now())} ms away`;
        throw err.final;
      }
      policy.onRetry?.({ error: err.final, throttled: isThrottling(err.final), retry: n + 1, delayMs: Math.round(delayMs) });
      await sleep(delayMs, signal);
    }
  }
}
