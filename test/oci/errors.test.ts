import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LayoutError } from '../../lambda/layout/oci-layout.ts';
import {
  DigestMismatchError,
  errorKind,
  GoJsonError,
  isClassified,
  isNotFound,
  isTransient,
  LimitExceededError,
  NotFoundError,
  SociIndexerError,
  statusKind,
} from '../../lambda/oci/errors.ts';
import { checkContent, RegistryError } from '../../lambda/registry/errors.ts';
import { isMissingOrBroken } from '../../lambda/soci/errors.ts';
import { SociError } from '../../lambda/soci/types.ts';
import { ZtocError } from '../../lambda/ztoc/types.ts';

const sys = (code: string) => Object.assign(new Error(`socket: ${code}`), { code });

describe('errorKind: one vocabulary', () => {
  test('each error states its own kind', () => {
    assert.equal(errorKind(new NotFoundError('gone')), 'notFound');
    assert.equal(errorKind(new DigestMismatchError('sha256:a', 'sha256:b')), 'corrupt');
    assert.equal(errorKind(new GoJsonError('invalid JSON')), 'corrupt');
    assert.equal(errorKind(new LimitExceededError('max-manifest-bytes', 'too big')), 'limit');
    assert.equal(errorKind(new LayoutError('not a layout')), 'permanent');
    assert.equal(errorKind(new RegistryError('unauthorized', 'x', 401)), 'unauthorized');
    assert.equal(errorKind(new RegistryError('denied', 'x', 403)), 'unauthorized');
    assert.equal(errorKind(new RegistryError('not-found', 'x', 404)), 'notFound');
    assert.equal(errorKind(new RegistryError('failed', 'x', 503)), 'transient');
    assert.equal(errorKind(new RegistryError('failed', 'x')), 'permanent');
    assert.equal(errorKind(new SociError('transient', 'deadline')), 'transient');
    assert.equal(errorKind(new ZtocError('bad-ztoc', 'x')), 'corrupt');
    assert.equal(errorKind(new ZtocError('limit-exceeded', 'x', 'max-toc-entries')), 'limit');
    assert.equal(errorKind(new ZtocError('unsupported-compression', 'x')), 'permanent');
    // A third-party backend needs no base class: the property is the contract.
    assert.equal(errorKind(Object.assign(new Error('shelf busy'), { errorKind: 'transient' })), 'transient');
  });

  test('Node system errors and HTTP statuses map in one place', () => {
    for (const code of ['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNREFUSED', 'EAI_AGAIN', 'UND_ERR_SOCKET'])
      assert.equal(errorKind(sys(code)), 'transient', code);
    assert.equal(errorKind(sys('ENOENT')), 'permanent');
    assert.equal(errorKind(new DOMException('aborted', 'AbortError')), 'transient');
    assert.deepEqual([404, 401, 403, 429, 408, 500, 503, 400, 501, 505].map(statusKind), [
      'notFound',
      'unauthorized',
      'unauthorized',
      'transient',
      'transient',
      'transient',
      'transient',
      'permanent',
      'permanent',
      'permanent',
    ]);
  });

  test('cause chains are walked; the outermost error that states a kind wins', () => {
    assert.equal(errorKind(new TypeError('fetch failed', { cause: sys('ECONNRESET') })), 'transient');
    assert.equal(errorKind(new Error('a', { cause: new Error('b', { cause: new NotFoundError('gone') }) })), 'notFound');
    assert.ok(isNotFound(new Error('wrapped', { cause: new RegistryError('not-found', 'x', 404) })));
    assert.equal(errorKind(new SociIndexerError('permanent', 'bad image', { cause: sys('ECONNRESET') })), 'permanent');
    assert.ok(isMissingOrBroken(new Error('wrapped', { cause: new DigestMismatchError('sha256:a', 'sha256:b') })));
  });

  test('AggregateError is transient only when every attempt was', () => {
    assert.equal(errorKind(new AggregateError([sys('ECONNREFUSED'), sys('ETIMEDOUT')])), 'transient');
    assert.equal(errorKind(new AggregateError([sys('ECONNREFUSED'), new NotFoundError('gone')])), 'notFound');
    assert.equal(errorKind(new AggregateError([])), 'permanent');
  });

  test('unknown errors are permanent, never retried', () => {
    for (const err of [
      new Error('something odd'),
      new RangeError('Invalid typed array length'),
      'a string',
      undefined,
      null,
      { code: 'EWHATEVER' },
    ]) {
      assert.equal(errorKind(err), 'permanent');
      assert.equal(isTransient(err), false);
      assert.equal(isClassified(err), false);
    }
  });

  test('both backends raise the same digest-mismatch error, and idempotency treats it as "not ours"', () => {
    const bytes = new Uint8Array([1, 2, 3]);
    assert.throws(
      () => checkContent({ digest: 'sha256:aa', size: 3 }, bytes, 'sha256:bb', 'registry h: blob'),
      (err: unknown) => err instanceof DigestMismatchError && errorKind(err) === 'corrupt' && isMissingOrBroken(err),
    );
    assert.throws(() => checkContent({ digest: 'sha256:aa', size: 4 }, bytes, 'sha256:aa', 'registry h: blob'), DigestMismatchError);
    assert.ok(!isMissingOrBroken(new RegistryError('failed', 'x', 503)));
    assert.ok(!isMissingOrBroken(new LimitExceededError('max-manifest-bytes', 'too big')));
  });
});
