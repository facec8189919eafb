// Streaming pushes (Target.pushFrom), used to copy layers between targets without holding them in
// memory: into an OCI layout and into a real registry (one PUT, or one streaming PATCH), with the digest
// checked and nothing left behind when the stream does not match; and cross-repository mounts (mountFrom),
// which the zTOC cache uses to place a cached zTOC, mounted when the source repository has the blob and
// refused (false, so the caller uploads) when it has not.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OciLayoutTarget } from '../../lambda/layout/oci-layout.ts';
import type { Descriptor } from '../../lambda/oci/target.ts';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { deterministicBytes } from '../support/images.ts';
import { type RunningRegistry, startRegistry } from '../support/registry.ts';

const blob = Buffer.from(deterministicBytes('push-from', 300_000));
const desc: Descriptor = {
  mediaType: 'application/octet-stream',
  digest: `sha256:${createHash('sha256').update(blob).digest('hex')}`,
  size: blob.length,
};

/** The blob in uneven pieces, counting how often the stream was opened. */
function source(bytes: Buffer = blob) {
  const opened = { count: 0 };
  const open = async () => {
    opened.count++;
    return (async function* () {
      for (let at = 0; at < bytes.length; at += 7_919) yield bytes.subarray(at, Math.min(bytes.length, at + 7_919));
    })();
  };
  return { open, opened };
}

describe('pushFrom into an OCI layout', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'push-from-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('streams the blob in, and a second push does not open the stream', async () => {
    const layout = await OciLayoutTarget.open(dir, { create: true });
    await layout.pushFrom(desc, source().open);
    assert.ok(Buffer.from(await readFile(join(dir, 'blobs', 'sha256', desc.digest.slice(7)))).equals(blob));
    const again = source();
    await layout.pushFrom(desc, again.open);
    assert.equal(again.opened.count, 0);
  });

  test('content that does not match the digest is refused and leaves no file', async () => {
    const layout = await OciLayoutTarget.open(dir, { create: true });
    const other: Descriptor = { ...desc, digest: `sha256:${'1'.repeat(64)}` };
    await assert.rejects(layout.pushFrom(other, source().open), {
      name: 'DigestMismatchError',
      errorKind: 'corrupt',
      message: new RegExp(`: blob ${other.digest} arrived as ${desc.digest} \\(${desc.size} bytes, expected ${desc.size}\\)$`),
    });
    const names = await readdir(join(dir, 'blobs', 'sha256'));
    assert.ok(!names.includes('1'.repeat(64)));
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.startsWith('.tmp-')),
      [],
    );
  });
});

describe('pushFrom into docker-registry', () => {
  let registry: RunningRegistry;
  before(async () => {
    registry = await startRegistry();
  });
  after(() => registry.stop());

  for (const monolithicLimit of [1 << 20, 64 * 1024]) {
    test(`monolithic limit ${monolithicLimit} (${monolithicLimit > blob.length ? 'one PUT' : 'one streaming PATCH'}): the registry serves back the same bytes`, async () => {
      const target = new RegistryTarget({ registry: registry.host, repository: `stream/c${monolithicLimit}`, monolithicLimit });
      await target.pushFrom(desc, source().open);
      assert.ok(await target.exists(desc));
      assert.ok(Buffer.from(await target.fetchBytes(desc)).equals(blob));
    });
  }

  test('a stream that does not match the digest is refused before the upload completes', async () => {
    const target = new RegistryTarget({
      registry: registry.host,
      repository: 'stream/bad',
      monolithicLimit: 64 * 1024,
      retry: { attempts: 1 },
    });
    const wrong = Buffer.from(blob);
    wrong[1000]! ^= 1;
    await assert.rejects(target.pushFrom(desc, source(wrong).open), {
      name: 'DigestMismatchError',
      errorKind: 'corrupt',
      message: new RegExp(`: content hashes to sha256:[0-9a-f]{64} \\(${wrong.length} bytes, expected ${desc.size}\\)$`),
    });
    assert.equal(await target.exists(desc), false);
  });
});

describe('mountFrom between repositories of docker-registry', () => {
  let registry: RunningRegistry;
  before(async () => {
    registry = await startRegistry();
  });
  after(() => registry.stop());

  test('mounted (true) when the source repository has the blob; false, and nothing mounted, when it has not', async () => {
    const target = (repository: string) => new RegistryTarget({ registry: registry.host, repository });
    const from = target('mount/from');
    await from.push(desc, blob);
    const into = target('mount/into');
    assert.equal(await into.mountFrom(desc, from), true);
    assert.ok(Buffer.from(await into.fetchBytes(desc)).equals(blob));

    // docker-registry answers 202 (an ordinary upload session) for a blob the source repository lacks.
    const absent = Buffer.from(deterministicBytes('mount-absent', 1000));
    const absentDesc: Descriptor = { ...desc, digest: `sha256:${createHash('sha256').update(absent).digest('hex')}`, size: absent.length };
    const other = target('mount/other');
    assert.equal(await other.mountFrom(absentDesc, from), false);
    assert.equal(await other.exists(absentDesc), false);
    // The same repository: nothing to mount, the answer is whether the blob is there.
    assert.equal(await from.mountFrom(desc, target('mount/from')), true);
    assert.equal(await from.mountFrom(absentDesc, target('mount/from')), false);
  });
});
