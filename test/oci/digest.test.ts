import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { descriptorFor, digestHex, isDigest, sha256Digest, verifyBytes, verifyStream } from '../../lambda/oci/digest.ts';
import { DigestMismatchError, InvalidDigestError } from '../../lambda/oci/errors.ts';
import { EMPTY_JSON_CONFIG } from '../../lambda/oci/media-types.ts';

const enc = (s: string) => new TextEncoder().encode(s);

async function drain(chunks: AsyncIterable<Uint8Array>): Promise<number> {
  let n = 0;
  for await (const c of chunks) n += c.length;
  return n;
}

async function* from(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield enc(p);
}

describe('digests', () => {
  test('sha256 of {} is the SOCI empty config digest', () => {
    assert.equal(sha256Digest(enc(EMPTY_JSON_CONFIG.content)), EMPTY_JSON_CONFIG.digest);
    assert.equal(EMPTY_JSON_CONFIG.size, 2);
  });

  test('isDigest accepts only sha256 with 64 lower-case hex digits', () => {
    assert.equal(isDigest(EMPTY_JSON_CONFIG.digest), true);
    assert.equal(isDigest(EMPTY_JSON_CONFIG.digest.toUpperCase()), false);
    assert.equal(isDigest(`sha512:${'a'.repeat(128)}`), false);
    assert.equal(isDigest(`sha256:${'a'.repeat(63)}`), false);
    assert.equal(isDigest(`sha256:../${'a'.repeat(61)}`), false);
  });

  test('digestHex refuses anything that is not a digest (it is used to build paths)', () => {
    assert.equal(digestHex(EMPTY_JSON_CONFIG.digest), EMPTY_JSON_CONFIG.digest.slice(7));
    assert.throws(() => digestHex('sha256:../../etc/passwd'), InvalidDigestError);
  });

  test('descriptorFor', () => {
    assert.deepEqual(descriptorFor('application/json', enc('{}'), { annotations: { a: 'b' } }), {
      mediaType: 'application/json',
      digest: EMPTY_JSON_CONFIG.digest,
      size: 2,
      annotations: { a: 'b' },
    });
  });

  test('verifyBytes checks size and digest', () => {
    const desc = descriptorFor('x', enc('hello'));
    verifyBytes(desc, enc('hello'));
    assert.throws(
      () => verifyBytes(desc, enc('hellO')),
      (e: unknown) => e instanceof DigestMismatchError && e.message.includes(desc.digest),
    );
    assert.throws(() => verifyBytes(desc, enc('hello!')), /has 6 bytes, descriptor says 5/);
  });

  test('verifyStream passes good content through and fails on bad content', async () => {
    const desc = descriptorFor('x', enc('hello world'));
    assert.equal(await drain(verifyStream(from('hello', ' ', 'world'), desc)), 11);
    await assert.rejects(drain(verifyStream(from('hello', ' ', 'World'), desc)), DigestMismatchError);
    await assert.rejects(drain(verifyStream(from('hello'), desc)), /has 5 bytes, descriptor says 11/);
    await assert.rejects(drain(verifyStream(from('hello world', '!!!'), desc)), /has at least 14 bytes/);
  });
});
