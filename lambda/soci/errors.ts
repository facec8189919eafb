// Turns whatever a backend threw into the core's SociError, whose kind tells callers whether retrying the
// same build can help: registry throttling, 5xx, dropped connections and deadlines can; bad images,
// missing content, refused credentials, inputs past a limit and engine failures (a RangeError, a
// FlatBuffers size error, a worker out of memory) cannot. Backends say which through TargetFailure; the
// core knows none of their error types. What nobody classified is permanent unless it carries a network
// error code: a poison image then costs one Lambda run, not three.
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
  const code = networkCode(err);
  if (code !== undefined) return new SociError('transient', oneLine(err), { cause: err });
  return new SociError('permanent', `unexpected error: ${oneLine(err)}`, { cause: err });
}

/** The transient errno code of `err` or of its cause (fetch wraps the socket error), if any. */
function networkCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 3; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code)) return e.code;
  }
  return undefined;
}

/** True for "this blob, manifest or tag does not exist" from either backend. */
export function isNotFound(err: unknown): boolean {
  return (err as TargetFailure | undefined)?.notFound === true;
}
