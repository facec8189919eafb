// Maps AWS SDK failures onto the core's transient/permanent split, which decides whether the handler
// throws (Lambda retries) or returns (retrying cannot help).
import { errorKind, statusKind } from '../oci/errors.ts';
import { SociError } from '../soci/types.ts';

interface SdkErrorShape {
  name?: string;
  message?: string;
  $fault?: 'client' | 'server';
  $retryable?: { throttling?: boolean };
  $metadata?: { httpStatusCode?: number };
}

const THROTTLING = /Throttl|TooManyRequests|RequestLimitExceeded|LimitExceeded|SlowDown/;

/** True when AWS asked us to slow down (ThrottlingException and kin, or 429). */
export function isAwsThrottling(err: unknown): boolean {
  const e = (err ?? {}) as SdkErrorShape;
  return e.$retryable?.throttling === true || (e.name !== undefined && THROTTLING.test(e.name)) || e.$metadata?.httpStatusCode === 429;
}

/** True when the same call may succeed later: throttling, 5xx, timeouts and network failures. */
export function isTransientAwsError(err: unknown): boolean {
  const e = (err ?? {}) as SdkErrorShape;
  if (e.$retryable || (e.name !== undefined && THROTTLING.test(e.name))) return true;
  if (e.$fault === 'server') return true;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined) return statusKind(status) === 'transient';
  // No HTTP answer at all: a connection refused, reset or timed out is transient, anything unknown is not.
  return errorKind(err) === 'transient';
}

/** Wraps an SDK failure as a SociError with a one-line message and the right kind. */
export function awsError(operation: string, err: unknown): SociError {
  const e = (err ?? {}) as SdkErrorShape;
  const line = String(e.message ?? err).split('\n')[0];
  return new SociError(isTransientAwsError(err) ? 'transient' : 'permanent', `${operation} failed (${e.name ?? 'Error'}: ${line})`, {
    cause: err,
  });
}
