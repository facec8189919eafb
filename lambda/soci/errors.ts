// Turns whatever a backend threw into the core's SociError, whose kind tells callers whether retrying the
// same build can help: registry throttling, 5xx, dropped connections and deadlines can; bad images,
// missing content and refused credentials cannot. Backends say which through TargetFailure; the core
// knows none of their error types.
import type { TargetFailure } from '../oci/errors.ts';
import { SociError } from './types.ts';

/** Input errors of the OCI model, the layout backend and the zTOC engine: the same input fails again. */
const INPUT_ERRORS = new Set([
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

/** `err` as a SociError; when `signal` was aborted with a SociError (a deadline), that reason wins. */
export function toSociError(err: unknown, signal?: AbortSignal): SociError {
  if (err instanceof SociError) return err;
  if (signal?.aborted && signal.reason instanceof SociError) return signal.reason;
  const transient = (err as TargetFailure | undefined)?.transient;
  if (typeof transient === 'boolean') return new SociError(transient ? 'transient' : 'permanent', oneLine(err), { cause: err });
  const name = (err as Error | undefined)?.name;
  if (name === 'AbortError' || name === 'TimeoutError') return new SociError('transient', `aborted: ${oneLine(err)}`, { cause: err });
  if (name !== undefined && INPUT_ERRORS.has(name)) return new SociError('permanent', oneLine(err), { cause: err });
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && PERMANENT_FS_CODES.has(code)) return new SociError('permanent', oneLine(err), { cause: err });
  return new SociError('transient', `unexpected error: ${oneLine(err)}`, { cause: err });
}

/** True for "this blob, manifest or tag does not exist" from either backend. */
export function isNotFound(err: unknown): boolean {
  return (err as TargetFailure | undefined)?.notFound === true;
}
