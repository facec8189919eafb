// Errors the registry client reports: one line naming the registry, the operation and, when the registry
// answered, its status and error code. Never carries credentials. (Malformed digests, tags and repository
// names are the shared InvalidDigestError / InvalidReferenceError instead.)
import type { TargetFailure } from '../oci/errors.ts';
import { isRetryableStatus } from './retry.ts';
import type { HttpResponse } from './transport.ts';

export type RegistryErrorKind =
  | 'not-found'
  | 'unauthorized'
  | 'denied'
  | 'failed'
  | 'digest-mismatch'
  | 'size-mismatch'
  | 'too-large'
  | 'invalid-input'
  | 'unsupported'
  | 'network';

export class RegistryError extends Error implements TargetFailure {
  override readonly name = 'RegistryError';

  constructor(
    readonly kind: RegistryErrorKind,
    message: string,
    readonly status?: number,
    /** The first error code of the registry's `{"errors":[…]}` body, e.g. `MANIFEST_UNKNOWN`. */
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get notFound(): boolean {
    return this.kind === 'not-found';
  }

  /** A dropped connection, or a throttling or server-side status that outlasted the client's own retries. */
  get transient(): boolean {
    return this.kind === 'network' || (this.kind === 'failed' && (this.status === undefined || isRetryableStatus(this.status)));
  }
}

const OUTCOMES: Partial<Record<number, [RegistryErrorKind, string]>> = {
  401: ['unauthorized', 'unauthorized'],
  403: ['denied', 'denied'],
  404: ['not-found', 'not found'],
};

/** Builds the error for a non-success response, e.g. `registry h:5000: manifest app:v1 not found (404 MANIFEST_UNKNOWN)`. */
export function responseError(registry: string, operation: string, status: number, code: string | undefined): RegistryError {
  const [kind, verb] = OUTCOMES[status] ?? ['failed', 'failed'];
  return new RegistryError(kind, `registry ${registry}: ${operation} ${verb} (${code ? `${status} ${code}` : status})`, status, code);
}

/** Throws unless `bytes` are exactly what `desc` describes; `what` names registry and operation. */
export function checkContent(desc: { digest: string; size: number }, bytes: Uint8Array, actualDigest: string, what: string): void {
  if (bytes.length !== desc.size) throw new RegistryError('size-mismatch', `${what}: ${bytes.length} bytes, descriptor says ${desc.size}`);
  if (actualDigest !== desc.digest) throw new RegistryError('digest-mismatch', `${what}: content hashes to ${actualDigest}, not ${desc.digest}`);
}

/** Reads the first error code of an OCI distribution error body; tolerates any other body. */
export async function readErrorCode(response: HttpResponse): Promise<string | undefined> {
  try {
    const text = await response.text();
    const body = JSON.parse(text) as { errors?: { code?: unknown }[] };
    const code = body.errors?.[0]?.code;
    return typeof code === 'string' && /^[A-Z_]{1,64}$/.test(code) ? code : undefined;
  } catch {
    return undefined;
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
