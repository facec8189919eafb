import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, cp, mkdtemp, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { LayoutError, OciLayoutTarget } from '../../lambda/layout/oci-layout.ts';
import { descriptorFor, sha256Digest } from '../../lambda/oci/digest.ts';
import { DigestMismatchError, InvalidReferenceError, NotFoundError } from '../../lambda/oci/errors.ts';
import { marshalIndex, parseIndex } from '../../lambda/oci/go-json.ts';
import {
  ANNOTATION_BUILD_TOOL_IDENTIFIER,
  ANNOTATION_REF_NAME,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  SOCI_INDEX_ARTIFACT_TYPE_V1,
  SOCI_INDEX_ARTIFACT_TYPE_V2,
} from '../../lambda/oci/media-types.ts';
import type { Descriptor } from '../../lambda/oci/target.ts';
import { goldenPath } from '../support/golden.ts';
import { collect } from '../support/run.ts';

const MANIFEST: Descriptor = {
  mediaType: MEDIA_TYPE_OCI_MANIFEST,
  digest: 'sha256:fbf36bc11809c654edf97c6f26cf31969fa65c8dc0402f4f4bb7bdf1a7249964',
  size: 1414,
};
const CONFIG_DIGEST = 'sha256:5c12f1d5a1621cf84fa66fe720e0465f50995cc37fd9e58736fe2450e66378dc';
const TINY_LAYER: Descriptor = {
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  digest: 'sha256:6b332377299a4716861e5c4455cdf7bbf2e6d42338fb6e5b936df287e806e26d',
  size: 125,
};
const GZIP_LAYER: Descriptor = {
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  digest: 'sha256:e2b3933ccdbbf9195269e7365dcf4a65673c1a6e4e2f2a6ade8127d5335ed297',
  size: 4923455,
};

const scratch = await mkdtemp(join(tmpdir(), 'oci-layout-test-'));
after(() => rm(scratch, { recursive: true, force: true }));
let copies = 0;

/** A writable copy of golden/image-layout (the golden tree itself is read-only). */
async function goldenCopy(): Promise<string> {
  const dir = join(scratch, `layout-${copies++}`);
  await cp(goldenPath('image-layout'), dir, { recursive: true });
  for (const sub of ['', 'blobs', 'blobs/sha256']) await chmod(join(dir, sub), 0o755);
  for (const name of await readdir(join(dir, 'blobs', 'sha256'))) await chmod(join(dir, 'blobs', 'sha256', name), 0o644);
  for (const name of ['index.json', 'oci-layout']) await chmod(join(dir, name), 0o644);
  return dir;
}

function blobFile(dir: string, digest: string): string {
  return join(dir, 'blobs', 'sha256', digest.slice(7));
}

async function corrupt(path: string, at: number): Promise<void> {
  const bytes = await readFile(path);
  bytes[at] = bytes[at]! ^ 0xff;
  await writeFile(path, bytes);
}

const readOnly = await OciLayoutTarget.open(await goldenCopy());

describe('open', () => {
  test('a directory without oci-layout is not a layout', async () => {
    const dir = await mkdtemp(join(scratch, 'empty-'));
    await assert.rejects(OciLayoutTarget.open(dir), (err: unknown) => err instanceof NotFoundError && /no oci-layout/.test(err.message));
  });

  test('an unsupported layout version is refused', async () => {
    const dir = await goldenCopy();
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
    await assert.rejects(OciLayoutTarget.open(dir), LayoutError);
  });

  test('a broken index.json is a LayoutError naming the file', async () => {
    const dir = await goldenCopy();
    await writeFile(join(dir, 'index.json'), '{"manifests":{}}');
    await assert.rejects(OciLayoutTarget.open(dir), /index\.json: json: cannot unmarshal object/);
  });

  test('create initialises an empty layout with Go-JSON files', async () => {
    const dir = join(scratch, 'created', 'nested');
    const layout = await OciLayoutTarget.open(dir, { create: true });
    assert.equal(await readFile(join(dir, 'oci-layout'), 'utf8'), '{"imageLayoutVersion":"1.0.0"}');
    assert.equal(
      await readFile(join(dir, 'index.json'), 'utf8'),
      `{"schemaVersion":2,"mediaType":"${MEDIA_TYPE_OCI_INDEX}","manifests":[]}`,
    );
    assert.ok((await stat(join(dir, 'blobs', 'sha256'))).isDirectory());
    assert.deepEqual(await layout.listManifests(), []);
    await assert.rejects(layout.resolve(''), NotFoundError);
  });

  test('create keeps an existing layout as it is', async () => {
    const dir = await goldenCopy();
    const before = await readFile(join(dir, 'index.json'));
    await OciLayoutTarget.open(dir, { create: true });
    assert.deepEqual(await readFile(join(dir, 'index.json')), before);
  });
});

describe('resolve', () => {
  test('a ref name gives the index.json entry', async () => {
    assert.deepEqual(await readOnly.resolve('golden'), { ...MANIFEST, annotations: { [ANNOTATION_REF_NAME]: 'golden' } });
  });

  test("'' gives the only entry", async () => {
    assert.equal((await readOnly.resolve('')).digest, MANIFEST.digest);
  });

  test('a digest gives the blob with the media type from its JSON and the file size', async () => {
    assert.deepEqual(await readOnly.resolve(MANIFEST.digest), MANIFEST);
  });

  test('a manifest without mediaType is recognised by its fields; a config blob is not a manifest', async () => {
    const layout = await OciLayoutTarget.open(await goldenCopy());
    const bare = Buffer.from('{"schemaVersion":2,"config":{"mediaType":"c","digest":"d","size":1},"layers":[]}');
    const desc = descriptorFor('', bare);
    await layout.push(desc, bare);
    assert.equal((await layout.resolve(desc.digest)).mediaType, MEDIA_TYPE_OCI_MANIFEST);
    await assert.rejects(layout.resolve(CONFIG_DIGEST), /neither a manifest nor an index/);
  });

  test('a non-JSON or oversized blob is not a manifest', async () => {
    await assert.rejects(readOnly.resolve(TINY_LAYER.digest), /not JSON/);
    await assert.rejects(readOnly.resolve(GZIP_LAYER.digest), /too large to be a manifest/);
  });

  test('unknown tags and digests are NotFoundError', async () => {
    await assert.rejects(readOnly.resolve('nope'), (err: unknown) => err instanceof NotFoundError && /"nope"/.test(err.message));
    await assert.rejects(readOnly.resolve(`sha256:${'0'.repeat(64)}`), NotFoundError);
  });

  test('a ref name on two different manifests is ambiguous; several entries need a ref name', async () => {
    const dir = await goldenCopy();
    const layout = await OciLayoutTarget.open(dir);
    const other = Buffer.from('{"schemaVersion":2,"manifests":[]}');
    const otherDesc = descriptorFor(MEDIA_TYPE_OCI_INDEX, other, { annotations: { [ANNOTATION_REF_NAME]: 'golden' } });
    await layout.push(otherDesc, other);
    const index = parseIndex(await readFile(join(dir, 'index.json')));
    await writeFile(join(dir, 'index.json'), marshalIndex({ ...index, manifests: [...index.manifests!, otherDesc] }));
    await assert.rejects(
      layout.resolve('golden'),
      (err: unknown) => err instanceof LayoutError && /2 different manifests/.test(err.message),
    );
    await assert.rejects(layout.resolve(''), /lists 2 manifests/);
  });
});

describe('blob files that are not what they claim', () => {
  test('a FIFO in place of a blob is refused at once, never opened for a blocking read', async () => {
    const dir = await goldenCopy();
    const path = blobFile(dir, GZIP_LAYER.digest);
    await rm(path);
    execFileSync('mkfifo', [path]);
    const layout = await OciLayoutTarget.open(dir);
    const refused = (err: unknown) =>
      err instanceof LayoutError && err.message === `oci:${dir}: blob ${GZIP_LAYER.digest} is a FIFO, not a regular file; refused`;
    await assert.rejects(layout.fetch(GZIP_LAYER), refused);
    await assert.rejects(layout.fetchBytes({ ...GZIP_LAYER, size: 10 }), /is a FIFO/);
    await assert.rejects(layout.resolve(GZIP_LAYER.digest), /is a FIFO/);
  });

  test('a symlink leading out of the layout is refused; one within it is followed', async () => {
    const dir = await goldenCopy();
    const path = blobFile(dir, TINY_LAYER.digest);
    const outside = join(scratch, `outside-${copies}`);
    await rename(path, outside);
    await symlink(outside, path);
    const layout = await OciLayoutTarget.open(dir);
    await assert.rejects(
      layout.fetch(TINY_LAYER),
      (err: unknown) => err instanceof LayoutError && /is a symlink leading out of the layout; refused/.test(err.message),
    );
    await assert.rejects(layout.fetchBytes(TINY_LAYER), /leading out of the layout/);
    await rm(path);
    await rename(outside, join(dir, 'blobs', 'elsewhere'));
    await symlink('../elsewhere', path);
    assert.equal((await collect(await layout.fetch(TINY_LAYER))).length, TINY_LAYER.size);
  });

  test('index.json must be a regular file within its limit', async () => {
    const dir = await goldenCopy();
    await rm(join(dir, 'index.json'));
    execFileSync('mkfifo', [join(dir, 'index.json')]);
    await assert.rejects(OciLayoutTarget.open(dir), /index\.json is a FIFO, not a regular file; refused/);
  });
});

describe('fetch', () => {
  test('streams the whole blob, verified, and reports bytes', async () => {
    let counted = 0;
    const bytes = await collect(await readOnly.fetch(GZIP_LAYER, { onBytes: (n) => (counted += n) }));
    assert.equal(bytes.length, GZIP_LAYER.size);
    assert.equal(sha256Digest(bytes), GZIP_LAYER.digest);
    assert.equal(counted, GZIP_LAYER.size);
  });

  test('a ranged fetch returns the tail of the blob', async () => {
    const whole = await readFile(goldenPath('image-layout', 'blobs', 'sha256', GZIP_LAYER.digest.slice(7)));
    const tail = await collect(await readOnly.fetch(GZIP_LAYER, { offset: 4_000_000 }));
    assert.deepEqual(tail, whole.subarray(4_000_000));
    assert.equal((await collect(await readOnly.fetch(GZIP_LAYER, { offset: GZIP_LAYER.size }))).length, 0);
  });

  test('an offset outside the blob is a RangeError', async () => {
    await assert.rejects(readOnly.fetch(TINY_LAYER, { offset: 126 }), RangeError);
    await assert.rejects(readOnly.fetch(TINY_LAYER, { offset: -1 }), RangeError);
  });

  test('a corrupted blob fails a whole fetch and fetchBytes, naming the digest; a ranged fetch is not verified', async () => {
    const dir = await goldenCopy();
    await corrupt(blobFile(dir, GZIP_LAYER.digest), 3_000_000);
    await corrupt(blobFile(dir, MANIFEST.digest), 10);
    const layout = await OciLayoutTarget.open(dir);
    await assert.rejects(
      collect(await layout.fetch(GZIP_LAYER)),
      (err: unknown) => err instanceof DigestMismatchError && err.message.includes(GZIP_LAYER.digest),
    );
    await assert.rejects(
      layout.fetchBytes(MANIFEST),
      (err: unknown) => err instanceof DigestMismatchError && err.message.includes(MANIFEST.digest),
    );
    assert.equal((await collect(await layout.fetch(GZIP_LAYER, { offset: 1 }))).length, GZIP_LAYER.size - 1);
  });

  test('a blob of another size than its descriptor fails the fetch before any read, ranged or not', async () => {
    const dir = await goldenCopy();
    const path = blobFile(dir, TINY_LAYER.digest);
    await writeFile(path, (await readFile(path)).subarray(0, 100));
    const layout = await OciLayoutTarget.open(dir);
    await assert.rejects(
      layout.fetch(TINY_LAYER),
      (err: unknown) => err instanceof DigestMismatchError && /is 100 bytes, its descriptor says 125/.test(err.message),
    );
    await assert.rejects(layout.fetch(TINY_LAYER, { offset: 10 }), /is 100 bytes, its descriptor says 125/);
    await assert.rejects(layout.fetchBytes(TINY_LAYER), /is 100 bytes, its descriptor says 125/);
  });

  test('a missing blob fails at fetch time with NotFoundError', async () => {
    const missing = { ...TINY_LAYER, digest: `sha256:${'1'.repeat(64)}` };
    await assert.rejects(readOnly.fetch(missing), NotFoundError);
    await assert.rejects(readOnly.fetchBytes(missing), NotFoundError);
    assert.equal(await readOnly.exists(missing), false);
    assert.equal(await readOnly.exists(TINY_LAYER), true);
  });

  test('a malformed digest never becomes a path', async () => {
    await assert.rejects(readOnly.fetch({ ...TINY_LAYER, digest: 'sha256:../../../etc/passwd' }), /not a sha256 digest/);
  });

  test('an aborted fetch stops', async () => {
    const controller = new AbortController();
    const chunks = await readOnly.fetch(GZIP_LAYER, { signal: controller.signal });
    controller.abort();
    await assert.rejects(collect(chunks), { name: 'AbortError' });
  });

  test('fetchBytes returns verified content', async () => {
    const bytes = await readOnly.fetchBytes(MANIFEST);
    assert.equal(sha256Digest(bytes), MANIFEST.digest);
  });
});

describe('push', () => {
  test('writes a new blob atomically, leaving no temporary file', async () => {
    const dir = await goldenCopy();
    const layout = await OciLayoutTarget.open(dir);
    const content = Buffer.from('new blob content');
    const desc = descriptorFor('application/octet-stream', content);
    assert.equal(await layout.exists(desc), false);
    await layout.push(desc, content);
    assert.deepEqual(await readFile(blobFile(dir, desc.digest)), content);
    assert.deepEqual(await layout.fetchBytes(desc), content);
    assert.deepEqual((await readdir(dir)).sort(), ['blobs', 'index.json', 'oci-layout']);
  });

  test('refuses content that does not match its descriptor', async () => {
    const dir = await goldenCopy();
    const layout = await OciLayoutTarget.open(dir);
    const desc = descriptorFor('application/octet-stream', Buffer.from('abc'));
    await assert.rejects(layout.push(desc, Buffer.from('abd')), DigestMismatchError);
    await assert.rejects(layout.push({ ...desc, size: 4 }, Buffer.from('abc')), DigestMismatchError);
    assert.equal(await layout.exists(desc), false);
  });

  test('pushing an existing blob leaves the file alone', async () => {
    const dir = await goldenCopy();
    const layout = await OciLayoutTarget.open(dir);
    const before = await stat(blobFile(dir, MANIFEST.digest));
    await layout.push(MANIFEST, await readFile(blobFile(dir, MANIFEST.digest)));
    assert.equal((await stat(blobFile(dir, MANIFEST.digest))).ino, before.ino);
  });

  test('creates blobs/sha256 when it is missing', async () => {
    const dir = join(scratch, 'no-blobs');
    await OciLayoutTarget.open(dir, { create: true });
    await rm(join(dir, 'blobs'), { recursive: true });
    const layout = await OciLayoutTarget.open(dir);
    const content = Buffer.from('{}');
    await layout.push(descriptorFor('application/json', content), content);
    assert.equal(await layout.exists(descriptorFor('application/json', content)), true);
  });
});

describe('tag', () => {
  async function pushIndex(layout: OciLayoutTarget, body: string): Promise<Descriptor> {
    const content = Buffer.from(body);
    const desc = descriptorFor(MEDIA_TYPE_OCI_INDEX, content);
    await layout.push(desc, content);
    return desc;
  }

  test('appends a new ref name and keeps the other entries as they were', async () => {
    const dir = await goldenCopy();
    const layout = await OciLayoutTarget.open(dir);
    const originalEntry = (await layout.listManifests())[0];
    const desc = await pushIndex(layout, '{"schemaVersion":2,"manifests":[]}');
    await layout.tag(desc, 'v2');
    const entries = await layout.listManifests();
    assert.deepEqual(entries, [originalEntry, { ...desc, annotations: { [ANNOTATION_REF_NAME]: 'v2' } }]);
    assert.deepEqual(await layout.resolve('v2'), entries[1]);
    // index.json is compact Go JSON.
    const written = await readFile(join(dir, 'index.json'));
    assert.deepEqual(Buffer.from(marshalIndex(parseIndex(written))), written);
    assert.ok(!written.includes(' '));
  });

  test('replaces the entry with the same ref name in place', async () => {
    const dir = await goldenCopy();
    const layout = await OciLayoutTarget.open(dir);
    const a = await pushIndex(layout, '{"schemaVersion":2,"manifests":[],"annotations":{"n":"a"}}');
    const b = await pushIndex(layout, '{"schemaVersion":2,"manifests":[],"annotations":{"n":"b"}}');
    await layout.tag(a, 'next');
    await layout.tag(MANIFEST, 'other');
    await layout.tag(b, 'next');
    const entries = await layout.listManifests();
    assert.deepEqual(
      entries.map((e) => [e.digest, e.annotations?.[ANNOTATION_REF_NAME]]),
      [
        [MANIFEST.digest, 'golden'],
        [b.digest, 'next'],
        [MANIFEST.digest, 'other'],
      ],
    );
  });

  test('keeps the descriptor annotations and platform, overriding only the ref name', async () => {
    const layout = await OciLayoutTarget.open(await goldenCopy());
    const resolved = await layout.resolve('golden');
    await layout.tag({ ...resolved, platform: { architecture: 'amd64', os: 'linux' } }, 'copy');
    const copy = await layout.resolve('copy');
    assert.deepEqual(copy, {
      ...MANIFEST,
      annotations: { [ANNOTATION_REF_NAME]: 'copy' },
      platform: { architecture: 'amd64', os: 'linux' },
    });
    assert.equal((await layout.resolve('golden')).digest, MANIFEST.digest);
  });

  test('concurrent tags on one target all land', async () => {
    const layout = await OciLayoutTarget.open(await goldenCopy());
    await Promise.all(Array.from({ length: 8 }, (_, i) => layout.tag(MANIFEST, `t${i}`)));
    const names = (await layout.listManifests()).map((e) => e.annotations?.[ANNOTATION_REF_NAME]).sort();
    assert.deepEqual(names, ['golden', 't0', 't1', 't2', 't3', 't4', 't5', 't6', 't7']);
  });

  test('refuses a missing blob and an invalid ref name', async () => {
    const layout = await OciLayoutTarget.open(await goldenCopy());
    await assert.rejects(layout.tag({ ...MANIFEST, digest: `sha256:${'2'.repeat(64)}` }, 'x'), NotFoundError);
    await assert.rejects(layout.tag(MANIFEST, 'bad name'), InvalidReferenceError);
    assert.equal((await layout.listManifests()).length, 1);
  });
});

describe('referrers', () => {
  async function layoutWithSociIndexes(): Promise<{ layout: OciLayoutTarget; v1: Descriptor }> {
    const layout = await OciLayoutTarget.open(await goldenCopy());
    const descs: Descriptor[] = [];
    for (const name of ['soci-index-v1.json', 'soci-index-v2.json']) {
      const content = await readFile(goldenPath('index', 'a-span4m-min1MiB', name));
      const desc = descriptorFor(MEDIA_TYPE_OCI_MANIFEST, content);
      await layout.push(desc, content);
      await layout.tag(desc, name.replace('.json', ''));
      descs.push(desc);
    }
    // Tagged twice: still one referrer.
    await layout.tag(descs[0]!, 'again');
    return { layout, v1: descs[0]! };
  }

  test('finds index.json manifests whose subject is the image, as referrers descriptors', async () => {
    const { layout, v1 } = await layoutWithSociIndexes();
    assert.deepEqual(await layout.referrers(MANIFEST), [
      { ...v1, annotations: { [ANNOTATION_BUILD_TOOL_IDENTIFIER]: 'AWS SOCI CLI v0.2' }, artifactType: SOCI_INDEX_ARTIFACT_TYPE_V1 },
    ]);
  });

  test('filters by artifact type and by subject', async () => {
    const { layout } = await layoutWithSociIndexes();
    assert.equal((await layout.referrers(MANIFEST, SOCI_INDEX_ARTIFACT_TYPE_V1)).length, 1);
    assert.deepEqual(await layout.referrers(MANIFEST, SOCI_INDEX_ARTIFACT_TYPE_V2), []);
    assert.deepEqual(await layout.referrers(TINY_LAYER), []);
  });

  test('a layout without referrers gives none', async () => {
    assert.deepEqual(await readOnly.referrers(MANIFEST), []);
  });
});
