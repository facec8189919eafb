// Turns whatever a backend threw into the core's SociError, whose kind tells callers whether retrying the
// same build can help: registry throttling, 5xx, dropped connections and deadlines can; bad images,
// missing content and refused credentials cannot.
import { RegistryError } from '../registry/errors.ts';
import { SociError } from './types.ts';

/** Input errors of the OCI model, the layout backend and the zTOC engine: the same input fails again. */
const INPUT_ERRORS = new Set([
  'NotFoundError',
  'DigestMismatchError',
  'InvalidDigestError',
  'InvalidReferenceError',
  'GoJsonError',
  'MediaTypeError',
  'LayoutError',
  'ZtocError',
]);

/** File-system failures that a retry cannot fix (a missing or unreadable layout). */
const PERMANENT_FS_CODES = new Set(['ENOENT', 'EACCES', 'EPERM', 'EISDIR', 'ENOTDIR', 'EROFS']);

function oneLine(err: unknown): string {
  return String((err as Error | undefined)?.message ?? err).split('\n')[0]!;
}

function registryFailureKind(err: RegistryError): SociError['kind'] {
  switch (err.kind) {
    case 'network':
      return 'transient';
    case 'failed': {
      const status = err.status;
      return status === undefined || status === 408 || status === 429 || status >= 500 ? 'transient' : 'permanent';
    }
    default:
      return 'permanent';
  }
}

/** `err` as a SociError; when `signal` was aborted with a SociError (a deadline), that reason wins. */
export function toSociError(err: unknown, signal?: AbortSignal): SociError {
  if (err instanceof SociError) return err;
  if (signal?.aborted && signal.reason instanceof SociError) return signal.reason;
  if (err instanceof RegistryError) return new SociError(registryFailureKind(err), err.message, { cause: err });
  const name = (err as Error | undefined)?.name;
  if (name === 'AbortError' || name === 'TimeoutError') return new SociError('transient', `aborted: ${oneLine(err)}`, { cause: err });
  if (name !== undefined && INPUT_ERRORS.has(name)) return new SociError('permanent', oneLine(err), { cause: err });
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && PERMANENT_FS_CODES.has(code)) return new SociError('permanent', oneLine(err), { cause: err });
  return new SociError('transient', `unexpected error: ${oneLine(err)}`, { cause: err });
}

/** True for "this blob, manifest or tag does not exist" from either backend. */
export function isNotFound(err: unknown): boolean {
  if (err instanceof RegistryError) return err.kind === 'not-found';
  return (err as Error | undefined)?.name === 'NotFoundError';
}
