// The Target contract: what the soci core relies on from any backend, run against each one (memory,
// layout, registry) by its own test file, in the spirit of go-containerregistry's `validate` package.
// A backend only says how to make a fresh, empty target and how to corrupt a stored blob; the checks are
// the same for all.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { descriptorFor } from '../../lambda/oci/digest.ts';
import { DigestMismatchError, errorKind, isNotFound } from '../../lambda/oci/errors.ts';
import { marshalManifest } from '../../lambda/oci/go-json.ts';
import {
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_LAYER_GZIP,
  MEDIA_TYPE_OCI_MANIFEST,
  SOCI_INDEX_ARTIFACT_TYPE_V2,
} from '../../lambda/oci/media-types.ts';
import type { Descriptor, Target } from '../../lambda/oci/target.ts';

export interface ContractBackend {
  /** A fresh, empty target; every check gets its own. */
  open(): Promise<Target>;
  /**
   * Makes (at least) the next `reads` whole reads of blob `desc` from `target` return bytes of the same
   * size that no longer match its digest, as a damaged disk or a bad proxy would.
   */
  corrupt(target: Target, desc: Descriptor, reads: number): Promise<void>;
}

/** Every backend raises the one DigestMismatchError (kind `corrupt`) for content that does not hash to its descriptor. */
export function isDigestMismatch(err: unknown): boolean {
  return err instanceof DigestMismatchError && errorKind(err) === 'corrupt';
}

const encoder = new TextEncoder();

/** A 3000-byte blob of `seed`-dependent bytes (not valid gzip: backends store bytes, they do not parse them). */
function blobBytes(seed: number): Uint8Array {
  const bytes = new Uint8Array(3000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + seed * 17) & 0xff;
  return bytes;
}

function blob(seed: number): { desc: Descriptor; bytes: Uint8Array } {
  const bytes = blobBytes(seed);
  return { desc: descriptorFor(MEDIA_TYPE_OCI_LAYER_GZIP, bytes), bytes };
}

/** An image manifest over one config and one layer (pushed first), optionally a referrer of `subject`. */
async function pushImage(
  target: Target,
  seed: number,
  subject?: Descriptor,
): Promise<{ desc: Descriptor; bytes: Uint8Array; layer: Descriptor }> {
  const config = encoder.encode(JSON.stringify({ architecture: 'amd64', os: 'linux', seed }));
  const configDesc = descriptorFor(MEDIA_TYPE_OCI_CONFIG, config);
  const layer = blob(seed);
  await target.push(configDesc, config);
  await target.push(layer.desc, layer.bytes);
  const bytes = marshalManifest({
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_OCI_MANIFEST,
    ...(subject && { artifactType: SOCI_INDEX_ARTIFACT_TYPE_V2 }),
    config: configDesc,
    layers: [layer.desc],
    ...(subject && { subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size } }),
    ...(subject && { annotations: { 'org.example.seed': String(seed) } }),
  });
  const desc = descriptorFor(MEDIA_TYPE_OCI_MANIFEST, bytes);
  await target.push(desc, bytes);
  return { desc, bytes, layer: layer.desc };
}

async function* chunks(...parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  yield* parts;
}

async function readAll(target: Target, desc: Descriptor, offset?: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of await target.fetch(desc, offset === undefined ? {} : { offset })) parts.push(part);
  return Buffer.concat(parts);
}

/** Registers the contract's tests (in a describe named `name`) for one backend. */
export function targetContract(name: string, backend: ContractBackend): void {
  describe(`Target contract: ${name}`, () => {
    test('a pushed blob exists, reads back whole (fetch and fetchBytes) with its size, and a ranged read returns its tail', async () => {
      const target = await backend.open();
      const { desc, bytes } = blob(1);
      assert.equal(await target.exists(desc), false);
      await target.push(desc, bytes);
      assert.equal(await target.exists(desc), true);
      assert.deepEqual(await readAll(target, desc), Buffer.from(bytes));
      assert.deepEqual(Buffer.from(await target.fetchBytes(desc)), Buffer.from(bytes));
      assert.deepEqual(await readAll(target, desc, 1000), Buffer.from(bytes.subarray(1000)));
      assert.equal((await readAll(target, desc, desc.size)).length, 0);
      let counted = 0;
      for await (const part of await target.fetch(desc, { onBytes: (n) => (counted += n) })) void part;
      assert.equal(counted, desc.size);
      await assert.rejects(async () => readAll(target, desc, desc.size + 1));
    });

    test('pushing a blob or a manifest again is a no-op; concurrent pushes of one blob all succeed', async () => {
      const target = await backend.open();
      const { desc, bytes } = blob(2);
      await target.push(desc, bytes);
      await target.push(desc, bytes);
      const image = await pushImage(target, 3);
      await target.push(image.desc, image.bytes);
      const other = blob(4);
      const pushes: Promise<void>[] = [];
      for (let i = 0; i < 4; i++) pushes.push(target.push(other.desc, other.bytes));
      if (target.pushFrom) {
        for (let i = 0; i < 2; i++)
          pushes.push(target.pushFrom(other.desc, async () => chunks(other.bytes.subarray(0, 100), other.bytes.subarray(100))));
      }
      await Promise.all(pushes);
      assert.deepEqual(Buffer.from(await target.fetchBytes(other.desc)), Buffer.from(other.bytes));
      assert.deepEqual(Buffer.from(await target.fetchBytes(image.desc)), Buffer.from(image.bytes));
    });

    test('a push whose bytes do not match the descriptor is a digest mismatch and stores nothing', async () => {
      const target = await backend.open();
      const { desc, bytes } = blob(5);
      const wrong = bytes.slice();
      wrong[10] = wrong[10]! ^ 0xff;
      await assert.rejects(target.push(desc, wrong), isDigestMismatch);
      if (target.pushFrom)
        await assert.rejects(
          target.pushFrom(desc, async () => chunks(wrong)),
          isDigestMismatch,
        );
      assert.equal(await target.exists(desc), false);
    });

    test('a stored blob that was corrupted fails a whole read (fetch, fetchBytes) with the digest-mismatch error', async () => {
      const target = await backend.open();
      const { desc, bytes } = blob(6);
      await target.push(desc, bytes);
      await backend.corrupt(target, desc, 2);
      await assert.rejects(readAll(target, desc), isDigestMismatch);
      await assert.rejects(target.fetchBytes(desc), isDigestMismatch);
    });

    test('a descriptor with the right digest but the wrong size does not read back: its size is part of what is verified', async () => {
      const target = await backend.open();
      const { desc, bytes } = blob(14);
      await target.push(desc, bytes);
      for (const size of [desc.size - 1, desc.size + 1]) {
        await assert.rejects(readAll(target, { ...desc, size }), isDigestMismatch, `fetch with size ${size}`);
        await assert.rejects(target.fetchBytes({ ...desc, size }), isDigestMismatch, `fetchBytes with size ${size}`);
      }
      await assert.rejects(target.push({ ...desc, size: desc.size + 1 }, bytes), isDigestMismatch);
      assert.equal(await target.exists(desc), true);
    });

    test('what does not exist is not found: fetch, fetchBytes, resolve of a tag or digest, tag; exists is false', async () => {
      const target = await backend.open();
      const { desc } = blob(7);
      assert.equal(await target.exists(desc), false);
      await assert.rejects(readAll(target, desc), isNotFound);
      await assert.rejects(readAll(target, desc, 10), isNotFound);
      await assert.rejects(target.fetchBytes(desc), isNotFound);
      await assert.rejects(target.resolve('no-such-tag'), isNotFound);
      const manifest = descriptorFor(MEDIA_TYPE_OCI_MANIFEST, encoder.encode('{"schemaVersion":2}'));
      await assert.rejects(target.resolve(manifest.digest), isNotFound);
      await assert.rejects(target.tag(manifest, 'v1'), isNotFound);
    });

    test('a manifest is pushed by digest, resolved by digest and by tag, and read back', async () => {
      const target = await backend.open();
      const image = await pushImage(target, 8);
      const byDigest = await target.resolve(image.desc.digest);
      assert.deepEqual([byDigest.mediaType, byDigest.digest, byDigest.size], [MEDIA_TYPE_OCI_MANIFEST, image.desc.digest, image.desc.size]);
      await assert.rejects(target.resolve('v1'), isNotFound, 'a manifest pushed by digest carries no tag');
      await target.tag(image.desc, 'v1');
      const byTag = await target.resolve('v1');
      assert.deepEqual([byTag.mediaType, byTag.digest, byTag.size], [MEDIA_TYPE_OCI_MANIFEST, image.desc.digest, image.desc.size]);
      assert.deepEqual(Buffer.from(await target.fetchBytes(byTag)), Buffer.from(image.bytes));
      assert.deepEqual(await readAll(target, byTag), Buffer.from(image.bytes));
    });

    test('tags: two tags on one manifest, a tag moved to another manifest, tagging again is a no-op', async () => {
      const target = await backend.open();
      const first = await pushImage(target, 9);
      const second = await pushImage(target, 10);
      await target.tag(first.desc, 'a');
      await target.tag(first.desc, 'b');
      await target.tag(first.desc, 'b');
      assert.equal((await target.resolve('a')).digest, first.desc.digest);
      assert.equal((await target.resolve('b')).digest, first.desc.digest);
      await target.tag(second.desc, 'b');
      assert.equal((await target.resolve('a')).digest, first.desc.digest);
      assert.equal((await target.resolve('b')).digest, second.desc.digest);
    });

    test('referrers: a manifest whose subject is an image is listed with its artifactType and annotations, and filtered by artifactType', async () => {
      const target = await backend.open();
      const image = await pushImage(target, 11);
      const other = await pushImage(target, 12);
      await target.tag(image.desc, 'image');
      assert.deepEqual(await target.referrers(image.desc), []);
      const referrer = await pushImage(target, 13, image.desc);
      // A backend whose referrers are found only through tags says so (referrersNeedTags).
      if (target.referrersNeedTags) await target.tag(referrer.desc, 'image-referrer');
      const found = await target.referrers(image.desc);
      assert.deepEqual(
        found.map((d) => [d.digest, d.mediaType, d.size, d.artifactType, d.annotations]),
        [[referrer.desc.digest, MEDIA_TYPE_OCI_MANIFEST, referrer.desc.size, SOCI_INDEX_ARTIFACT_TYPE_V2, { 'org.example.seed': '13' }]],
      );
      assert.equal((await target.referrers(image.desc, SOCI_INDEX_ARTIFACT_TYPE_V2)).length, 1);
      assert.deepEqual(await target.referrers(image.desc, 'application/vnd.example.other'), []);
      assert.deepEqual(await target.referrers(other.desc), []);
    });
  });
}
