// Failure classification for asynchronous invocation: a transient failure is thrown so Lambda retries
// (and, once retries are exhausted, hands the event to the on-failure destination); a permanent one is
// reported and the invocation returns, since retrying the same input cannot succeed.
import { RegistryError } from '../registry/errors.ts';
import { SociError } from '../soci/types.ts';

// Errors about the input itself, from the OCI model, the layout backend and the zTOC engine.
const PERMANENT_NAMES = new Set([
  'NotFoundError',
  'DigestMismatchError',
  'InvalidDigestError',
  'InvalidReferenceError',
  'GoJsonError',
  'MediaTypeError',
  'ZtocError',
  'FilterSyntaxError',
]);

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0]!;
}

function registryKind(err: RegistryError): SociError['kind'] {
  if (err.kind === 'network') return 'transient';
  if (err.kind === 'failed') return err.status === undefined || err.status === 429 || err.status === 408 || err.status >= 500 ? 'transient' : 'permanent';
  // not-found, unauthorized, denied, digest/size mismatch, invalid input, unsupported: the same again.
  return 'permanent';
}

/** Any error as a SociError with the kind that decides retry or not. Unknown errors count as transient:
 *  Lambda's retries are bounded, and a bug must reach the on-failure destination rather than vanish. */
export function classifyFailure(err: unknown): SociError {
  if (err instanceof SociError) return err;
  if (err instanceof RegistryError) return new SociError(registryKind(err), err.message, { cause: err });
  const name = (err as Error)?.name;
  if (name === 'AbortError' || name === 'TimeoutError') {
    return new SociError('transient', `stopped at the deadline before finishing (${firstLine(err)})`, { cause: err });
  }
  if (name !== undefined && PERMANENT_NAMES.has(name)) return new SociError('permanent', firstLine(err), { cause: err });
  return new SociError('transient', `unexpected error: ${firstLine(err)}`, { cause: err });
}
