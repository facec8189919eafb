import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { layerSkipCode } from '../../lambda/handler/metrics.ts';
import { classifyFailure } from '../../lambda/handler/outcome.ts';
import { RegistryError } from '../../lambda/registry/errors.ts';
import { SociError } from '../../lambda/soci/types.ts';

describe('classifyFailure', () => {
  test('SociErrors keep their kind', () => {
    const err = new SociError('permanent', 'bad image');
    assert.equal(classifyFailure(err), err);
  });

  test('registry errors: network, throttling and 5xx retry; the rest does not', () => {
    const kind = (e: RegistryError) => classifyFailure(e).kind;
    assert.equal(kind(new RegistryError('network', 'reset')), 'transient');
    assert.equal(kind(new RegistryError('failed', 'x', 503)), 'transient');
    assert.equal(kind(new RegistryError('failed', 'x', 429)), 'transient');
    assert.equal(kind(new RegistryError('failed', 'x', 400)), 'permanent');
    assert.equal(kind(new RegistryError('not-found', 'x', 404, 'MANIFEST_UNKNOWN')), 'permanent');
    assert.equal(kind(new RegistryError('not-found', 'x', 404, 'NAME_UNKNOWN')), 'permanent');
    assert.equal(kind(new RegistryError('denied', 'x', 403)), 'permanent');
    assert.equal(kind(new RegistryError('digest-mismatch', 'x')), 'permanent');
    assert.equal(classifyFailure(new RegistryError('not-found', 'registry h: manifest a:b not found (404 MANIFEST_UNKNOWN)')).message, 'registry h: manifest a:b not found (404 MANIFEST_UNKNOWN)');
  });

  test('input errors are permanent, aborts are a deadline, unknown errors retry', () => {
    class ZtocError extends Error {
      override readonly name = 'ZtocError';
    }
    assert.equal(classifyFailure(new ZtocError('bad gzip')).kind, 'permanent');
    const abort = classifyFailure(new DOMException('The operation was aborted', 'AbortError'));
    assert.equal(abort.kind, 'transient');
    assert.match(abort.message, /deadline/);
    const bug = classifyFailure(new TypeError('x is undefined\n    at stack'));
    assert.equal(bug.kind, 'transient');
    assert.equal(bug.message, 'unexpected error: x is undefined');
  });
});

describe('layerSkipCode', () => {
  test('reduces reasons to a few dimension values', () => {
    assert.equal(layerSkipCode('below minimum layer size'), 'below-minimum-size');
    assert.equal(layerSkipCode('zstd is not indexable'), 'unsupported-format');
    assert.equal(layerSkipCode('unsupported compression: application/vnd.oci.image.layer.v1.tar+encrypted'), 'unsupported-format');
    assert.equal(layerSkipCode('bad gzip header at offset 0'), 'error');
    assert.equal(layerSkipCode(undefined), 'error');
  });
});
