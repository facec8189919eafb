// RegistryTarget through an Amazon ECR-like front (test/support/ecr-front.ts) over a real docker-registry
// with basic auth: uploads answered 201 with a stale Range, parts with ECR's 5 MiB minimum, blob reads
// redirected to an origin that rejects Authorization, tag-immutable repositories, Accept-driven manifest
// conversion, and manifest PUTs throttled beyond a rate.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sha256Digest } from '../../lambda/oci/digest.ts';
import {
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
} from '../../lambda/oci/media-types.ts';
import type { Descriptor } from '../../lambda/oci/target.ts';
import { RegistryTarget, type RegistryTargetOptions } from '../../lambda/registry/client.ts';
import { RegistryError } from '../../lambda/registry/errors.ts';
import type { RetryNotice } from '../../lambda/registry/retry.ts';
import { MAX_CHUNK_BYTES, MIN_CHUNK_BYTES, requestedChunkSize } from '../../lambda/registry/upload.ts';
import { descriptorOf } from '../support/bytes.ts';
import { type EcrFront, type EcrFrontOptions, startEcrFront } from '../support/ecr-front.ts';
import { type BuiltLayout, buildLayout, deterministicBytes, pushLayout } from '../support/images.ts';
import { type RunningRegistry, startRegistry } from '../support/registry.ts';

const creds = { username: 'AWS', password: 'ecr-front-pw' };
const MiB = 1024 * 1024;
const blobOf = (bytes: Uint8Array): Descriptor => descriptorOf(bytes, 'application/vnd.amazon.soci.ztoc.v1+json');
const ALL_TYPES = [MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST];

describe('RegistryTarget through an ECR-like front', () => {
  let registry: RunningRegistry;
  let image: BuiltLayout;
  const fronts: EcrFront[] = [];
  const front = async (options: Omit<EcrFrontOptions, 'upstream'> = {}) => {
    const started = await startEcrFront({ upstream: registry.host, ...options });
    fronts.push(started);
    return started;
  };
  const targetOn = (f: EcrFront, repository: string, options: Partial<RegistryTargetOptions> = {}) =>
    new RegistryTarget({ registry: f.host, repository, credentials: async () => creds, retry: { baseDelayMs: 5 }, ...options });
  const uploads = (f: EcrFront, from: number) =>
    f.requests.slice(from).filter((r) => r.path.includes('/blobs/uploads/') && r.status !== 401);

  before(async () => {
    registry = await startRegistry({ auth: creds });
    image = await buildLayout({ layers: [{ compression: 'gzip', files: [{ name: 'app/a.bin', size: 200_000 }] }], tag: 'v1' });
    for (const repository of ['ecr/oci', 'ecr/immutable']) await pushLayout(image, `${registry.host}/${repository}:v1`, { creds });
    await pushLayout(image, `${registry.host}/ecr/docker:v1`, { creds, format: 'v2s2' });
  });
  after(async () => {
    for (const f of fronts) await f.stop();
    await registry?.stop();
  });

  describe('uploads', () => {
    test('a 20 MiB zTOC goes up in one streaming PATCH answered 201 (Range stale), then the closing PUT', async () => {
      const f = await front();
      const content = deterministicBytes('ecr-ztoc', 20 * MiB);
      const desc = blobOf(content);
      const start = f.requests.length;
      await targetOn(f, 'ecr/uploads').push(desc, content);
      const session = uploads(f, start);
      assert.deepEqual(
        session.map((r) => `${r.method} ${r.status}`),
        ['POST 202', 'PATCH 201', 'PUT 201'],
      );
      assert.equal(session[1]!.bodyBytes, content.length);
      assert.equal(session[1]!.quirk, 'patch-201');
      assert.ok(Buffer.from(await targetOn(f, 'ecr/uploads').fetchBytes(desc)).equals(content));
    });

    test('when the registry asks for chunks, every part but the last is at least 5 MiB and offsets are ours, not Range', async () => {
      // The front asks for 1-byte chunks and refuses a second PATCH after a part below 5 MiB, as ECR does.
      const f = await front({ chunkMinLength: 1 });
      const content = deterministicBytes('ecr-chunked', 12 * MiB + 12345);
      const desc = blobOf(content);
      const start = f.requests.length;
      await targetOn(f, 'ecr/uploads', { monolithicLimit: MiB }).push(desc, content);
      const patches = uploads(f, start).filter((r) => r.method === 'PATCH');
      assert.deepEqual(
        patches.map((p) => p.bodyBytes),
        [5 * MiB, 5 * MiB, 2 * MiB + 12345],
      );
      assert.deepEqual(
        patches.map((p) => p.contentRange),
        [`0-${5 * MiB - 1}`, `${5 * MiB}-${10 * MiB - 1}`, `${10 * MiB}-${content.length - 1}`],
      );
      assert.ok(patches.every((p) => p.status === 201));
      assert.ok(Buffer.from(await targetOn(f, 'ecr/uploads').fetchBytes(desc)).equals(content));
    });

    test('a streamed copy (pushFrom) of a blob above the monolithic limit arrives intact', async () => {
      const f = await front();
      const content = Buffer.from(deterministicBytes('ecr-stream', 3 * MiB + 7));
      const desc = blobOf(content);
      const open = async () =>
        (async function* () {
          for (let at = 0; at < content.length; at += 65_521) yield content.subarray(at, at + 65_521);
        })();
      await targetOn(f, 'ecr/stream', { monolithicLimit: MiB }).pushFrom(desc, open);
      assert.ok(Buffer.from(await targetOn(f, 'ecr/stream').fetchBytes(desc)).equals(content));
    });

    test("OCI-Chunk-Min-Length is clamped to ECR's part minimum and a memory bound; garbage means no chunking", () => {
      assert.equal(requestedChunkSize('1'), MIN_CHUNK_BYTES);
      assert.equal(requestedChunkSize(String(8 * MiB)), 8 * MiB);
      assert.equal(requestedChunkSize(String(10 * 1024 * MiB)), MAX_CHUNK_BYTES);
      assert.equal(requestedChunkSize('99999999999999999999'), MAX_CHUNK_BYTES);
      for (const header of [null, '', '0', '-5', '1e9', 'lots']) assert.equal(requestedChunkSize(header), undefined, String(header));
    });
  });

  describe('manifests', () => {
    test('every manifest GET and HEAD accepts every manifest type, and after resolving only digests are asked for', async () => {
      const f = await front();
      const target = targetOn(f, 'ecr/oci');
      const start = f.requests.length;
      const root = await target.resolve('v1');
      assert.equal(root.digest, image.root.digest);
      await target.fetchBytes(root);
      await target.exists(root);
      await target.tag(root, 'v1');
      const manifestReads = f.requests
        .slice(start)
        .filter((r) => r.path.includes('/manifests/') && (r.method === 'GET' || r.method === 'HEAD') && r.status !== 401);
      assert.ok(manifestReads.length >= 2);
      for (const read of manifestReads)
        assert.deepEqual(
          read.accept
            ?.split(',')
            .map((t) => t.trim())
            .sort(),
          [...ALL_TYPES].sort(),
          `${read.method} ${read.path}`,
        );
      const byTag = manifestReads.filter((r) => !r.path.includes('/manifests/sha256:'));
      // resolve() and tag()'s check of what the tag names: nothing else is read by tag.
      assert.deepEqual(
        byTag.map((r) => r.method),
        ['GET', 'HEAD'],
      );
    });

    for (const narrowAccept of ['convert', 'not-found'] as const) {
      test(`a front that ${narrowAccept === 'convert' ? 'converts' : 'answers 404'} on a narrow Accept still resolves both formats to the stored digest`, async () => {
        const f = await front({ narrowAccept });
        // The front is real: a narrow Accept by tag gets another digest (or nothing).
        const narrow = await fetch(`http://${f.host}/v2/ecr/oci/manifests/v1`, {
          headers: {
            accept: MEDIA_TYPE_DOCKER_MANIFEST,
            authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`,
          },
        });
        await narrow.arrayBuffer();
        if (narrowAccept === 'convert') assert.notEqual(narrow.headers.get('docker-content-digest'), image.root.digest);
        else assert.equal(narrow.status, 404);
        const start = f.requests.length;
        assert.equal((await targetOn(f, 'ecr/oci').resolve('v1')).digest, image.root.digest);
        const docker = await targetOn(f, 'ecr/docker').resolve('v1');
        assert.equal(docker.mediaType, MEDIA_TYPE_DOCKER_MANIFEST);
        assert.deepEqual(
          f.requests
            .slice(start)
            .filter((r) => r.quirk !== undefined)
            .map((r) => r.quirk),
          [],
        );
      });
    }

    test('an immutable tag that already names the manifest is success without a PUT; moving it fails in one line', async () => {
      const f = await front({ immutable: { 'ecr/immutable': ['*-soci'] } });
      const target = targetOn(f, 'ecr/immutable');
      const root = await target.resolve('v1');
      const start = f.requests.length;
      await target.tag(root, 'v1');
      assert.equal(f.requests.slice(start).filter((r) => r.method === 'PUT').length, 0, 'no manifest PUT');

      // Another manifest (the image's config-less twin is not needed: any other manifest will do).
      const other = new TextEncoder().encode(
        JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_MANIFEST, config: image.images[0]!.config, layers: [] }),
      );
      const otherDesc = { mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: sha256Digest(other), size: other.length };
      await target.push(otherDesc, other);
      await assert.rejects(target.tag(otherDesc, 'v1'), (err: unknown) => {
        assert.ok(err instanceof RegistryError);
        assert.equal(err.transient, false);
        assert.equal(err.message.split('\n').length, 1);
        assert.match(
          err.message,
          /^registry 127\.0\.0\.1:\d+: tag ecr\/immutable:v1 is immutable \(400 TAG_INVALID\): it names sha256:[a-f0-9]{64} and cannot be moved/,
        );
        assert.match(err.message, /IMMUTABLE_WITH_EXCLUSION/);
        return true;
      });
      assert.equal((await target.resolve('v1')).digest, root.digest, 'the tag is untouched');
      // A tag matching an exclusion filter moves freely; a new tag is written.
      await target.tag(root, 'v1-soci');
      await target.tag(otherDesc, 'v1-soci');
      assert.equal((await target.resolve('v1-soci')).digest, otherDesc.digest);
      await target.tag(otherDesc, 'fresh');
      assert.equal((await target.resolve('fresh')).digest, otherDesc.digest);
    });

    test('manifest PUTs throttled beyond a rate are retried with backoff, each retry reported as throttled', async () => {
      const f = await front({ manifestPutsPerSecond: 2 });
      const notices: RetryNotice[] = [];
      // Six clients share 2 tokens/s, so the last one waits ~2 s for its token; with full jitter the sum of 11
      // sleeps (12 attempts) fell below that in ~1% of runs. 30 attempts leave that no room to flake.
      const target = targetOn(f, 'ecr/oci', {
        retry: { attempts: 30, baseDelayMs: 50, maxDelayMs: 1000, onRetry: (n) => notices.push(n) },
      });
      const root = await target.resolve('v1');
      await Promise.all(Array.from({ length: 6 }, (_, i) => target.tag(root, `burst-${i}`)));
      for (let i = 0; i < 6; i++) assert.equal((await target.resolve(`burst-${i}`)).digest, root.digest);
      const throttled = f.requests.filter((r) => r.quirk === 'throttled').length;
      assert.ok(throttled > 0, 'the front throttled');
      assert.equal(notices.filter((n) => n.throttled).length, throttled);
      assert.match(notices[0]!.error.message, /push manifest ecr\/oci:burst-\d \w+ \(429 TOOMANYREQUESTS\)/);
    });

    test('throttling that outlasts the deadline fails at once instead of sleeping past it', { timeout: 20_000 }, async () => {
      const f = await front({ manifestPutsPerSecond: 0.001 });
      // Any backoff drawn from [0, 10⁹ ms] ends after a deadline 2 s away (but for a 2·10⁻⁶ chance).
      const target = targetOn(f, 'ecr/oci', { retry: { attempts: 10, baseDelayMs: 1e9, maxDelayMs: 1e9, deadline: Date.now() + 2000 } });
      const root = await target.resolve('v1');
      await target.tag(root, 'first'); // the one token
      await assert.rejects(target.tag(root, 'second'), (err: unknown) => {
        assert.ok(err instanceof RegistryError);
        assert.equal(err.transient, true);
        assert.match(
          err.message,
          /^registry \S+: push manifest ecr\/oci:second failed \(429 TOOMANYREQUESTS\); not retried: the deadline is \d+ ms away$/,
        );
        return true;
      });
    });
  });
});
