// The soci core's small parts: containerd platform rules, upstream's layer selection order, prefetch path
// cleaning and span merging, bounded concurrency, output tag policies, the deadline guard and the
// transient/permanent split of backend errors.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DigestMismatchError, type ErrorKind, LimitExceededError, NotFoundError, type TargetFailure } from '../../lambda/oci/errors.ts';
import {
  MEDIA_TYPE_DOCKER_LAYER,
  MEDIA_TYPE_DOCKER_LAYER_GZIP,
  MEDIA_TYPE_DOCKER_LAYER_ZSTD,
  MEDIA_TYPE_OCI_LAYER,
  MEDIA_TYPE_OCI_LAYER_GZIP,
  MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE,
  MEDIA_TYPE_OCI_LAYER_ZSTD,
  SOCI_PREFETCH_MEDIA_TYPE,
} from '../../lambda/oci/media-types.ts';
import { RegistryError } from '../../lambda/registry/errors.ts';
import { isNotFound, toSociError } from '../../lambda/soci/errors.ts';
import { LayerIndexError } from '../../lambda/soci/layer-pool.ts';
import { formatPlatform, normalizePlatform, parsePlatform, parseSpecifier, platformMatches } from '../../lambda/soci/platform.ts';
import { mapPool } from '../../lambda/soci/pool.ts';
import { cleanPrefetchPath, mergeSpans, prefetchArtifact } from '../../lambda/soci/prefetch.ts';
import { selectLayer } from '../../lambda/soci/select.ts';
import { configuredTagPolicy, TAG_POLICIES, type TagPolicy, tagPolicyEntry } from '../../lambda/soci/tag-policy.ts';
import { checkDeadline, outputTags } from '../../lambda/soci/tagging.ts';
import { SociError } from '../../lambda/soci/types.ts';

const layer = (mediaType: string, size = 1000) => ({ mediaType, size, digest: `sha256:${'a'.repeat(64)}` });

describe('platforms', () => {
  test('normalized as containerd does', () => {
    assert.deepEqual(normalizePlatform({ os: 'Linux', architecture: 'aarch64', variant: 'v8' }), { os: 'linux', architecture: 'arm64' });
    assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'x86_64' }), { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'armhf' }), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.deepEqual(normalizePlatform({ os: 'linux', architecture: 'arm' }), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.deepEqual(normalizePlatform({ os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763' }), {
      os: 'windows',
      architecture: 'amd64',
      'os.version': '10.0.17763',
    });
  });

  test('--platform values read as containerd platforms.Parse reads them (what upstream records on the SOCI index)', () => {
    assert.deepEqual(parseSpecifier('linux/arm64'), { os: 'linux', architecture: 'arm64' });
    assert.deepEqual(parseSpecifier('linux/aarch64'), { os: 'linux', architecture: 'arm64' });
    assert.deepEqual(parseSpecifier('linux/arm64/v8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
    assert.deepEqual(parseSpecifier('linux/aarch64/8'), { os: 'linux', architecture: 'arm64', variant: 'v8' });
    assert.deepEqual(parseSpecifier('linux/arm'), { os: 'linux', architecture: 'arm' });
    assert.deepEqual(parseSpecifier('linux/armhf'), { os: 'linux', architecture: 'arm' });
    assert.deepEqual(parseSpecifier('linux/arm/7'), { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.deepEqual(parseSpecifier('Linux/X86_64'), { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(parseSpecifier('linux/amd64/v1'), { os: 'linux', architecture: 'amd64' });
    assert.deepEqual(parseSpecifier('linux/amd64/v3'), { os: 'linux', architecture: 'amd64', variant: 'v3' });
  });

  test('matched strictly after normalization', () => {
    assert.ok(platformMatches(parsePlatform('linux/arm64'), { os: 'linux', architecture: 'arm64', variant: 'v8' }));
    assert.ok(platformMatches(parsePlatform('linux/arm64/v8'), { os: 'linux', architecture: 'arm64' }));
    assert.ok(platformMatches(parsePlatform('linux/x86_64'), { os: 'linux', architecture: 'amd64' }));
    assert.ok(!platformMatches(parsePlatform('linux/arm/v6'), { os: 'linux', architecture: 'arm', variant: 'v7' }));
    assert.ok(!platformMatches(parsePlatform('linux/amd64'), { os: 'windows', architecture: 'amd64' }));
  });

  test('formatted os/arch[/variant]; bad specifiers are permanent errors', () => {
    assert.equal(formatPlatform({ os: 'linux', architecture: 'arm64', variant: 'v8' }), 'linux/arm64/v8');
    assert.equal(formatPlatform({ os: 'linux', architecture: 'amd64' }), 'linux/amd64');
    for (const bad of ['amd64', 'linux/', 'linux/arm64/v8/x', 'linux/am d64']) {
      assert.throws(
        () => parsePlatform(bad),
        (err: unknown) => err instanceof SociError && err.kind === 'permanent' && err.message.includes(JSON.stringify(bad)),
      );
    }
  });
});

describe('layer selection (upstream order of checks)', () => {
  test('gzip and plain tar are indexed; Docker rootfs.diff.tar is read as a tar', () => {
    assert.deepEqual(selectLayer(layer(MEDIA_TYPE_OCI_LAYER_GZIP), 1000, 'img'), { action: 'index', compression: 'gzip' });
    assert.deepEqual(selectLayer(layer(MEDIA_TYPE_DOCKER_LAYER_GZIP), 1000, 'img'), { action: 'index', compression: 'gzip' });
    assert.deepEqual(selectLayer(layer(MEDIA_TYPE_OCI_LAYER), 1000, 'img'), { action: 'index', compression: 'uncompressed' });
    assert.deepEqual(selectLayer(layer(MEDIA_TYPE_DOCKER_LAYER), 1000, 'img'), { action: 'index', compression: 'uncompressed' });
  });

  test('size is checked before compression; equal to the minimum is kept', () => {
    assert.deepEqual(selectLayer(layer(MEDIA_TYPE_OCI_LAYER_ZSTD, 999), 1000, 'img'), {
      action: 'skip',
      code: 'below-minimum-size',
      reason: 'below minimum layer size (999 < 1000)',
    });
    assert.equal(selectLayer(layer(MEDIA_TYPE_OCI_LAYER_GZIP, 1000), 1000, 'img').action, 'index');
  });

  test('zstd and unsupported variants are skipped with a reason; prefetch artifacts ignored', () => {
    assert.deepEqual(selectLayer(layer(MEDIA_TYPE_OCI_LAYER_ZSTD), 0, 'img'), {
      action: 'skip',
      code: 'unsupported-format',
      reason: 'zstd layers cannot be indexed',
    });
    assert.deepEqual(selectLayer(layer(MEDIA_TYPE_DOCKER_LAYER_ZSTD), 0, 'img'), {
      action: 'skip',
      code: 'unsupported-format',
      reason: 'zstd layers cannot be indexed',
    });
    assert.equal(selectLayer(layer(MEDIA_TYPE_OCI_LAYER_NONDISTRIBUTABLE), 0, 'img').action, 'skip');
    assert.equal(selectLayer(layer(`${MEDIA_TYPE_OCI_LAYER}+encrypted`), 0, 'img').action, 'skip');
    assert.equal(selectLayer(layer(SOCI_PREFETCH_MEDIA_TYPE, 0), 1000, 'img').action, 'skip');
  });

  test('a non-layer type or an unknown layer base type fails the image, naming it', () => {
    assert.throws(
      () => selectLayer(layer('application/vnd.oci.image.config.v1+json'), 0, 'repo linux/amd64'),
      (err: unknown) => err instanceof SociError && err.kind === 'permanent' && /^repo linux\/amd64: .*not a layer type$/.test(err.message),
    );
    assert.throws(
      () => selectLayer(layer('application/vnd.oci.image.layer.v2.squashfs'), 0, 'img'),
      (err: unknown) => err instanceof SociError && err.kind === 'permanent',
    );
  });
});

describe('prefetch', () => {
  test('paths are cleaned like Go path.Clean("/"+p) without the leading slash', () => {
    assert.equal(cleanPrefetchPath('/usr/lib/x'), 'usr/lib/x');
    assert.equal(cleanPrefetchPath('usr//lib/./x'), 'usr/lib/x');
    assert.equal(cleanPrefetchPath('../../etc/hostname'), 'etc/hostname');
    assert.equal(cleanPrefetchPath('a/b/../c/'), 'a/c');
    assert.equal(cleanPrefetchPath('/'), '');
  });

  test('spans are sorted and merged when overlapping or adjacent, disjoint ones kept', () => {
    assert.deepEqual(
      mergeSpans([
        { start: 5, end: 6 },
        { start: 0, end: 1 },
        { start: 2, end: 2 },
        { start: 9, end: 9 },
        { start: 6, end: 7 },
      ]),
      [
        { start: 0, end: 2 },
        { start: 5, end: 7 },
        { start: 9, end: 9 },
      ],
    );
  });

  test('the artifact is compact Go JSON with the layer digest annotation', () => {
    const { bytes, descriptor } = prefetchArtifact(`sha256:${'b'.repeat(64)}`, [
      { start: 3, end: 4 },
      { start: 0, end: 0 },
    ]);
    assert.equal(
      Buffer.from(bytes).toString(),
      '{"version":"1.0","prefetch_spans":[{"start_span":0,"end_span":0},{"start_span":3,"end_span":4}]}',
    );
    assert.equal(descriptor.mediaType, SOCI_PREFETCH_MEDIA_TYPE);
    assert.deepEqual(descriptor.annotations, { 'com.amazon.soci.image-layer-digest': `sha256:${'b'.repeat(64)}` });
  });
});

describe('bounded concurrency', () => {
  test('never more than the limit at once; results in input order', async () => {
    let running = 0;
    let peak = 0;
    const results = await mapPool([30, 10, 20, 5, 15], 2, async (ms) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, ms));
      running--;
      return ms * 2;
    });
    assert.equal(peak, 2);
    assert.deepEqual(results, [60, 20, 40, 10, 30]);
  });

  test('the first failure aborts the others and is the one rethrown; later tasks never start', async () => {
    const started: number[] = [];
    const aborted: number[] = [];
    await assert.rejects(
      mapPool([0, 1, 2, 3], 2, async (n, _i, signal) => {
        started.push(n);
        if (n === 1) throw new Error('boom');
        await new Promise<void>((resolve) =>
          signal.addEventListener(
            'abort',
            () => {
              aborted.push(n);
              resolve();
            },
            { once: true },
          ),
        );
        throw new Error(`aborted ${n}`);
      }),
      /^Error: boom$/,
    );
    assert.deepEqual(started, [0, 1]);
    assert.deepEqual(aborted, [0]);
  });
});

describe('output tags and deadline', () => {
  test('suffix, explicit tags and in place', () => {
    assert.deepEqual(outputTags({ mode: 'suffix', suffix: '-soci' }, 'v1'), { tags: ['v1-soci'] });
    assert.deepEqual(outputTags({ mode: 'tags', tags: ['a', 'b', 'a'] }, undefined), { tags: ['a', 'b'] });
    assert.deepEqual(outputTags({ mode: 'in-place' }, 'v1'), { tags: ['v1'] });
    assert.deepEqual(outputTags({ mode: 'suffix', suffix: '-soci' }, undefined).tags, []);
    const untagged = 'the source was given by digest without a tag, so the output is not tagged (name output tags explicitly)';
    assert.deepEqual(outputTags({ mode: 'in-place' }, undefined), { tags: [], untagged });
    assert.deepEqual(outputTags({ mode: 'suffix', suffix: '-soci' }, undefined), { tags: [], untagged });
  });

  test('impossible tags are permanent errors before any work', () => {
    assert.throws(() => outputTags({ mode: 'suffix', suffix: '-soci' }, 'x'.repeat(125)), { name: 'SociError', kind: 'permanent' });
    assert.throws(() => outputTags({ mode: 'tags', tags: ['bad tag'] }, 'v1'), { name: 'SociError', kind: 'permanent' });
    assert.throws(() => outputTags({ mode: 'tags', tags: [] }, 'v1'), { name: 'SociError', kind: 'permanent' });
    assert.throws(() => outputTags({ mode: 'suffix', suffix: '' }, 'v1'), { name: 'SociError', kind: 'permanent' });
  });

  test('each tag policy answers the core from its one entry', () => {
    const sample: Record<TagPolicy['mode'], TagPolicy> = {
      suffix: { mode: 'suffix', suffix: '-x' },
      tags: { mode: 'tags', tags: ['out'] },
      'in-place': { mode: 'in-place' },
    };
    assert.deepEqual(Object.keys(TAG_POLICIES).sort(), Object.keys(sample).sort());
    const answers = Object.values(sample).map((policy) => {
      const entry = tagPolicyEntry(policy);
      assert.equal(entry, TAG_POLICIES[policy.mode]);
      const sync = 'unsupported' in entry.sync ? entry.sync.unsupported.slice(0, 19) : entry.sync.outputTag(policy, 'v1', '-m');
      return [policy.mode, outputTags(policy, 'v1').tags, entry.replacesSource, entry.suffix(policy), sync, entry.prunable];
    });
    assert.deepEqual(answers, [
      ['suffix', ['v1-x'], false, '-x', 'v1-m', true],
      ['tags', ['out'], false, undefined, 'sync derives output', false],
      ['in-place', ['v1'], true, undefined, 'v1', false],
    ]);
    assert.deepEqual(configuredTagPolicy({ inPlace: true, tagSuffix: '-s' }), { mode: 'in-place' });
    assert.deepEqual(configuredTagPolicy({ inPlace: false, tagSuffix: '-s' }), { mode: 'suffix', suffix: '-s' });
  });

  test('the deadline guard fails transiently only within the margin', () => {
    checkDeadline(undefined, 1000, 'pushing');
    checkDeadline(Date.now() + 60_000, 1000, 'pushing');
    assert.throws(
      () => checkDeadline(Date.now() + 500, 1000, 'tagging v1-soci'),
      (err: unknown) => err instanceof SociError && err.kind === 'transient' && /^deadline: .*tagging v1-soci/.test(err.message),
    );
  });
});

describe('error kinds', () => {
  test('throttling, 5xx and network failures are transient; the rest of the registry errors permanent', () => {
    const kind = (err: unknown) => toSociError(err).kind;
    assert.equal(kind(new RegistryError('failed', 'x', 429)), 'transient');
    assert.equal(kind(new RegistryError('failed', 'x', 503)), 'transient');
    assert.equal(kind(new RegistryError('network', 'x')), 'transient');
    assert.equal(kind(new RegistryError('failed', 'x', 400)), 'permanent');
    assert.equal(kind(new RegistryError('not-found', 'x', 404)), 'permanent');
    assert.equal(kind(new RegistryError('denied', 'x', 403)), 'permanent');
    assert.equal(kind(new NotFoundError('gone')), 'permanent');
    assert.equal(kind(new DigestMismatchError('sha256:a', 'sha256:b')), 'permanent');
    assert.equal(kind(Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' })), 'permanent');
    // Nobody classified it: permanent (a poison image must not be retried), unless it is a network failure.
    assert.equal(kind(new Error('something odd')), 'permanent');
    assert.equal(kind(new RangeError('Invalid typed array length: 4294967296')), 'permanent');
    assert.equal(kind(new Error('FlatBuffers: cannot grow buffer beyond 2 gigabytes.')), 'permanent');
    assert.equal(kind(new LimitExceededError('max-token-body-bytes', 'token response exceeds the 1 MiB limit')), 'permanent');
    assert.equal(kind(new LayerIndexError('layer worker ran out of memory')), 'permanent');
    assert.equal(kind(new RegistryError('invalid-response', 'registry h: token server answered without a token')), 'permanent');
    assert.equal(kind(new RegistryError('failed', 'registry h: push blob failed (no upload Location)')), 'permanent');
    assert.equal(kind(new RegistryError('conflict', 'referrers index keeps changing')), 'transient');
    for (const code of ['ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ECONNREFUSED', 'EAI_AGAIN']) {
      assert.equal(kind(Object.assign(new Error(`socket: ${code}`), { code })), 'transient', code);
    }
    assert.equal(kind(new TypeError('fetch failed', { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) })), 'transient');
    // 501 Not Implemented and 505 HTTP Version Not Supported: the client does not retry them, nor does the core.
    assert.equal(kind(new RegistryError('failed', 'x', 501)), 'permanent');
    assert.equal(kind(new RegistryError('failed', 'x', 505)), 'permanent');
  });

  test('any backend can say "not found" or "retry me" through TargetFailure, without the core knowing its type', () => {
    class ShelfError extends Error implements TargetFailure {
      constructor(
        message: string,
        readonly errorKind: ErrorKind,
      ) {
        super(message);
      }
    }
    assert.equal(toSociError(new ShelfError('shelf busy', 'transient')).kind, 'transient');
    assert.equal(toSociError(new ShelfError('no such box', 'notFound')).kind, 'permanent');
    assert.equal(toSociError(new ShelfError('shelf busy\ndetails', 'transient')).message, 'shelf busy');
    assert.ok(isNotFound(new ShelfError('no such box', 'notFound')));
    assert.ok(!isNotFound(new ShelfError('shelf busy', 'transient')));
    assert.ok(isNotFound(new NotFoundError('gone')));
    assert.ok(isNotFound(new RegistryError('not-found', 'x', 404)));
    assert.ok(!isNotFound(new RegistryError('denied', 'x', 403)));
    assert.ok(!isNotFound(new Error('gone')));
  });

  test('an abort with a SociError reason yields that reason; messages stay one line', () => {
    const controller = new AbortController();
    const reason = new SociError('transient', 'deadline exceeded');
    controller.abort(reason);
    assert.equal(toSociError(new DOMException('aborted', 'AbortError'), controller.signal), reason);
    assert.equal(toSociError(new Error('first line\nsecond')).message, 'unexpected error: first line');
  });
});
