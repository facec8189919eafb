// Turns whatever a backend threw into the core's SociError, whose kind tells callers whether retrying the
// same build can help. The verdict is oci/errors.ts's errorKind: only `transient` failures (throttling,
// 5xx, dropped connections, deadlines) are retried; missing content, refused credentials, corrupt
// content, inputs past a limit, engine failures and anything nobody classified are permanent: a poison
// image then costs one Lambda run, not three.
import { errorKind, isClassified } from '../oci/errors.ts';
import { SociError } from './types.ts';

export { isNotFound } from '../oci/errors.ts';

/**
 * Content under our name that is missing or broken (not found, a digest mismatch, JSON or a zTOC that
 * does not parse): not our output, so it is built again rather than failing the build.
 */
export function isMissingOrBroken(err: unknown): boolean {
  const kind = errorKind(err);
  return kind === 'notFound' || kind === 'corrupt';
}

function oneLine(err: unknown): string {
  return String((err as Error | undefined)?.message ?? err).split('\n')[0]!;
}

/** `err` as a SociError; when `signal` was aborted with a SociError (a deadline), that reason wins. */
export function toSociError(err: unknown, signal?: AbortSignal): SociError {
  if (err instanceof SociError) return err;
  if (signal?.aborted && signal.reason instanceof SociError) return signal.reason;
  const kind = errorKind(err);
  const name = (err as Error | undefined)?.name;
  if (name === 'AbortError' || name === 'TimeoutError') return new SociError('transient', `aborted: ${oneLine(err)}`, { cause: err });
  if (!isClassified(err)) return new SociError('permanent', `unexpected error: ${oneLine(err)}`, { cause: err });
  return new SociError(kind === 'transient' ? 'transient' : 'permanent', oneLine(err), { cause: err });
}
