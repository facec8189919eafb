// The one error vocabulary of soci-indexer. Every error the project raises says its own kind, and one
// function (errorKind) reads it, walking `cause` chains, so that the core, the backends and the adapters
// decide "retry?", "not found?", "not ours?" the same way without knowing each other's error types.
// Messages are one line and name the thing that was wrong (a digest, a reference, a media type).

/**
 * - `notFound`: the blob, manifest, tag or repository does not exist.
 * - `transient`: the same call may succeed when tried again (throttling, 5xx, dropped connections, deadlines).
 * - `permanent`: the same input fails again (bad input, unsupported format, an engine failure, anything unknown).
 * - `corrupt`: content does not match its descriptor or does not parse (digest or size mismatch, bad JSON, bad zTOC).
 * - `unauthorized`: credentials missing or refused (401, 403).
 * - `limit`: untrusted input went past a documented limit (README "Limits").
 */
export type ErrorKind = 'notFound' | 'transient' | 'permanent' | 'corrupt' | 'unauthorized' | 'limit';

/** What any error (ours, or a third-party backend's) implements to say its kind. */
export interface TargetFailure {
  readonly errorKind: ErrorKind;
}

/** Base of the project's errors: the kind is part of the error, never derived from its class name. */
export class SociIndexerError extends Error implements TargetFailure {
  constructor(
    readonly errorKind: ErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Shorthands kept for callers of the earlier boolean API. */
  get notFound(): boolean {
    return this.errorKind === 'notFound';
  }

  get transient(): boolean {
    return this.errorKind === 'transient';
  }
}

/** A blob, manifest, tag or layout that does not exist. */
export class NotFoundError extends SociIndexerError {
  override readonly name = 'NotFoundError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('notFound', message, options);
  }
}

/** Content whose bytes do not hash (or size) to what its descriptor says; raised by every backend. */
export class DigestMismatchError extends SociIndexerError {
  override readonly name = 'DigestMismatchError';
  constructor(
    readonly expected: string,
    readonly actual: string,
    detail = `content of ${expected} hashes to ${actual}`,
  ) {
    super('corrupt', `digest mismatch: ${detail}`);
  }
}

/** A digest string that is not `sha256:` followed by 64 lower-case hex digits. */
export class InvalidDigestError extends SociIndexerError {
  override readonly name = 'InvalidDigestError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('permanent', message, options);
  }
}

/** An image or layout reference that cannot be parsed. */
export class InvalidReferenceError extends SociIndexerError {
  override readonly name = 'InvalidReferenceError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('permanent', message, options);
  }
}

/** JSON that Go's encoding/json would reject (syntax, or a value of the wrong type for a field). */
export class GoJsonError extends SociIndexerError {
  override readonly name = 'GoJsonError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('corrupt', message, options);
  }
}

/** A media type soci cannot classify (containerd returns ErrNotImplemented for it). */
export class MediaTypeError extends SociIndexerError {
  override readonly name = 'MediaTypeError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('permanent', message, options);
  }
}

/**
 * Untrusted input went past a documented limit (a response body, a header field, a count of records or
 * checkpoints). The same input fails again, so it is never retried. `code` is the stable reason code that
 * summaries, events and metrics carry; `limit` names the limit that was hit.
 */
export class LimitExceededError extends SociIndexerError {
  override readonly name = 'LimitExceededError';
  readonly code = 'limit-exceeded';
  constructor(
    readonly limit: string,
    message: string,
  ) {
    super('limit', message);
  }
}

/** HTTP statuses as kinds (registries and AWS APIs alike): throttling and server-side failures are worth another try. */
export function statusKind(status: number): ErrorKind {
  if (status === 404) return 'notFound';
  if (status === 401 || status === 403) return 'unauthorized';
  if (status === 429 || status === 408 || (status >= 500 && status !== 501 && status !== 505)) return 'transient';
  return 'permanent';
}

/** Network and resource-exhaustion codes (Node's errno codes and undici's): the next attempt may succeed. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENETRESET',
  'EMFILE',
  'ENFILE',
  'EAGAIN',
  'EBUSY',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

const MAX_CAUSE_DEPTH = 8;

/** The kind one error states about itself (no cause walking): its own `errorKind`, or what Node's name/code say. */
function ownKind(err: unknown): ErrorKind | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { errorKind?: unknown; name?: unknown; code?: unknown; errors?: unknown };
  if (typeof e.errorKind === 'string') return e.errorKind as ErrorKind;
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return 'transient';
  if (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code)) return 'transient';
  // Several attempts failed (e.g. one connection per address): transient only when every one of them was.
  if (err instanceof AggregateError && Array.isArray(e.errors) && e.errors.length > 0) {
    const kinds = e.errors.map((inner) => findKind(inner));
    if (kinds.every((k) => k === 'transient')) return 'transient';
    return kinds.find((k) => k !== undefined && k !== 'transient');
  }
  return undefined;
}

/** The first kind stated along `err`'s cause chain (the outermost error that says one wins), if any. */
function findKind(err: unknown): ErrorKind | undefined {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < MAX_CAUSE_DEPTH; e = (e as { cause?: unknown }).cause, depth++) {
    const kind = ownKind(e);
    if (kind !== undefined) return kind;
  }
  return undefined;
}

/**
 * What kind of failure `err` is: the kind stated by it or by the first error in its `cause` chain that
 * states one. An error nobody classified is `permanent`: retrying a poison image costs runs and helps nobody.
 */
export function errorKind(err: unknown): ErrorKind {
  return findKind(err) ?? 'permanent';
}

/** True when `err` (or an error it wraps) states a kind; false for a bare Error, a RangeError, a string. */
export function isClassified(err: unknown): boolean {
  return findKind(err) !== undefined;
}

/** The same call may succeed when tried again. */
export function isTransient(err: unknown): boolean {
  return errorKind(err) === 'transient';
}

/** True for "this blob, manifest or tag does not exist" from any backend. */
export function isNotFound(err: unknown): boolean {
  return errorKind(err) === 'notFound';
}
