// Typed errors shared by the OCI model and the Target backends. Messages are one line and name the
// thing that was wrong (a digest, a reference, a media type).

/**
 * What a backend's error may say about itself, so that the soci core can react without knowing the
 * backend's own error types: the content does not exist, or the same call may succeed when retried
 * (throttling, server errors, dropped connections). Absent means unknown.
 */
export interface TargetFailure {
  readonly notFound?: boolean;
  readonly transient?: boolean;
}

/** A blob, manifest, tag or layout that does not exist. */
export class NotFoundError extends Error implements TargetFailure {
  override readonly name = 'NotFoundError';
  readonly notFound = true;
  readonly transient = false;
}

/** Content whose bytes do not hash (or size) to what its descriptor says. */
export class DigestMismatchError extends Error {
  override readonly name = 'DigestMismatchError';
  constructor(
    readonly expected: string,
    readonly actual: string,
    detail = `content of ${expected} hashes to ${actual}`,
  ) {
    super(`digest mismatch: ${detail}`);
  }
}

/** A digest string that is not `sha256:` followed by 64 lower-case hex digits. */
export class InvalidDigestError extends Error {
  override readonly name = 'InvalidDigestError';
}

/** An image or layout reference that cannot be parsed. */
export class InvalidReferenceError extends Error {
  override readonly name = 'InvalidReferenceError';
}

/** JSON that Go's encoding/json would reject (syntax, or a value of the wrong type for a field). */
export class GoJsonError extends Error {
  override readonly name = 'GoJsonError';
}

/** A media type soci cannot classify (containerd returns ErrNotImplemented for it). */
export class MediaTypeError extends Error {
  override readonly name = 'MediaTypeError';
}

/**
 * Untrusted input went past a documented limit (a response body, a header field, a count of records or
 * checkpoints). The same input fails again, so it is never retried. `code` is the stable reason code that
 * summaries, events and metrics carry; `limit` names the limit that was hit.
 */
export class LimitExceededError extends Error implements TargetFailure {
  override readonly name = 'LimitExceededError';
  readonly code = 'limit-exceeded';
  readonly transient = false;
  constructor(
    readonly limit: string,
    message: string,
  ) {
    super(message);
  }
}
