// Errors the registry client reports: one line naming the registry, the operation and, when the registry
// answered, its status and error code. Never carries credentials. (Malformed digests, tags and repository
// names are the shared InvalidDigestError / InvalidReferenceError instead.)
import { DigestMismatchError, type ErrorKind, SociIndexerError, statusKind } from '../oci/errors.ts';
import type { HttpResponse } from './transport.ts';

export type RegistryErrorKind =
  | 'not-found'
  | 'unauthorized'
  | 'denied'
  | 'failed'
  | 'invalid-input'
  | 'unsupported'
  /** The registry answered something no retry will change: malformed JSON, a missing header. */
  | 'invalid-response'
  /** Concurrent writers kept changing the same thing: may succeed when tried again. */
  | 'conflict'
  | 'network';

/** This client's detail (`kind`, status, registry code) mapped onto the shared vocabulary in one place. */
function registryErrorKind(kind: RegistryErrorKind, status: number | undefined): ErrorKind {
  switch (kind) {
    case 'not-found':
      return 'notFound';
    case 'unauthorized':
    case 'denied':
      return 'unauthorized';
    // A dropped connection, or concurrent writers that kept changing the same thing.
    case 'network':
    case 'conflict':
      return 'transient';
    // A status that outlasted the client's own retries; a failure without one (a malformed answer) is deterministic.
    case 'failed':
      return status === undefined ? 'permanent' : statusKind(status);
    default:
      return 'permanent';
  }
}

export class RegistryError extends SociIndexerError {
  override readonly name = 'RegistryError';

  constructor(
    readonly kind: RegistryErrorKind,
    message: string,
    readonly status?: number,
    /** The first error code of the registry's `{"errors":[…]}` body, e.g. `MANIFEST_UNKNOWN`. */
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(registryErrorKind(kind, status), message, options);
  }
}

const OUTCOMES: Partial<Record<number, [RegistryErrorKind, string]>> = {
  401: ['unauthorized', 'unauthorized'],
  403: ['denied', 'denied'],
  404: ['not-found', 'not found'],
};

/**
 * Builds the error for a non-success response, e.g. `registry h:5000: manifest app:v1 not found (404
 * MANIFEST_UNKNOWN)`; an error body past its limit is named: `(404; error body over the 1 MiB limit, not read)`.
 */
export function responseError(registry: string, operation: string, status: number, body: ErrorBody = {}): RegistryError {
  const [kind, verb] = OUTCOMES[status] ?? ['failed', 'failed'];
  const detail = body.code
    ? `${status} ${body.code}`
    : body.oversized
      ? `${status}; error body over the ${MAX_ERROR_BODY_BYTES >> 20} MiB limit, not read`
      : String(status);
  return new RegistryError(kind, `registry ${registry}: ${operation} ${verb} (${detail})`, status, body.code);
}

/** Throws unless `bytes` are exactly what `desc` describes; `what` names registry and operation. */
export function checkContent(desc: { digest: string; size: number }, bytes: Uint8Array, actualDigest: string, what: string): void {
  if (bytes.length !== desc.size)
    throw new DigestMismatchError(desc.digest, actualDigest, `${what}: ${bytes.length} bytes, descriptor says ${desc.size}`);
  if (actualDigest !== desc.digest)
    throw new DigestMismatchError(desc.digest, actualDigest, `${what}: content hashes to ${actualDigest}, not ${desc.digest}`);
}

/** containers/image reads at most this much of an error body; so do we (the status decides the outcome). */
export const MAX_ERROR_BODY_BYTES = 1 << 20;

/** The error code of an OCI distribution error body, or why there is none worth reporting. */
export interface ErrorBody {
  code?: string;
  /** The body went past MAX_ERROR_BODY_BYTES and was closed unread. */
  oversized?: boolean;
}

/** Reads the first error code of an OCI distribution error body (at most MAX_ERROR_BODY_BYTES); tolerates any other body. */
export async function readErrorBody(response: HttpResponse): Promise<ErrorBody> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    // Leaving the loop early closes the connection through the iterator's return().
    for await (const chunk of (response.body ?? []) as AsyncIterable<Uint8Array>) {
      total += chunk.length;
      if (total > MAX_ERROR_BODY_BYTES) return { oversized: true };
      chunks.push(chunk);
    }
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { errors?: { code?: unknown }[] };
    const code = body.errors?.[0]?.code;
    return typeof code === 'string' && /^[A-Z_]{1,64}$/.test(code) ? { code } : {};
  } catch {
    return {};
  }
}

/** A short reason for a failed fetch (e.g. `ECONNRESET`), free of URLs. */
export function networkReason(err: unknown): string {
  const own = (err as { code?: unknown }).code; // node:http errors carry the code themselves
  if (typeof own === 'string' && own !== 'ERR_STREAM_PREMATURE_CLOSE') return own;
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
  if (typeof cause?.code === 'string') return cause.code;
  if (typeof cause?.message === 'string') return cause.message.split('\n')[0]!;
  return String((err as Error).message ?? err).split('\n')[0]!;
}

/** `<what> failed (ECONNRESET)` for a connection that failed or dropped; `what` names registry and operation. */
export function networkError(what: string, err: unknown): RegistryError {
  return new RegistryError('network', `${what} failed (${networkReason(err)})`, undefined, undefined, { cause: err });
}
