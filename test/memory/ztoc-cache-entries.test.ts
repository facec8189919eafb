// The zTOC cache's promises one by one, against MemoryTargets (unit tier): the key (every field that
// changes the zTOC bytes is in the tag and in the entry), the checks a hit must pass (manifest media
// type, config type, every key annotation, one layer, the zTOC media type, its size, its digest, and the
// zTOC's own header), and where a hit is placed (mounted, else copied, else already there). Every bad
// entry must be an `invalid` miss with its reason, never a hit. (Against docker-registry, through whole
// builds: test/soci/ztoc-cache*.test.ts.)
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { MemoryTarget } from '../../lambda/memory/memory-target.ts';
import { descriptorFor, sha256Digest } from '../../lambda/oci/digest.ts';
import { SociIndexerError } from '../../lambda/oci/errors.ts';
import { marshalIndex, marshalManifest, parseManifest } from '../../lambda/oci/go-json.ts';
import {
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_LAYER,
  MEDIA_TYPE_OCI_LAYER_GZIP,
  MEDIA_TYPE_OCI_MANIFEST,
  SOCI_ZTOC_MEDIA_TYPE,
} from '../../lambda/oci/media-types.ts';
import { isTag } from '../../lambda/oci/reference.ts';
import type { Descriptor, Target } from '../../lambda/oci/target.ts';
import {
  type CacheLookup,
  cacheTag,
  keyFields,
  MAX_CACHED_ZTOC_BYTES,
  RepositoryZtocCache,
  ZTOC_CACHE_FORMAT,
  type ZtocCacheKey,
} from '../../lambda/soci/ztoc-cache.ts';
import { VERSION } from '../../lambda/version.ts';
import { buildZtoc, type ZtocSummary } from '../../lambda/ztoc/builder.ts';
import { parseZtoc, serializeZtoc } from '../../lambda/ztoc/codec.ts';
import { ZTOC_VERSION } from '../../lambda/ztoc/types.ts';
import { tarBytes } from '../support/bytes.ts';

const SPAN = 65536;

class TransientTargetError extends SociIndexerError {
  constructor(message: string) {
    super('transient', message);
  }
}
const TOOL = 'cache-entries-test';

async function tarLayer(): Promise<Uint8Array> {
  const mtime = new Date('2024-01-01T00:00:00Z');
  return tarBytes((archive) => {
    for (let i = 0; i < 4; i++) archive.entry({ name: `file-${i}.bin`, mode: 0o644, mtime }, Buffer.alloc(50_000, `content ${i}`));
  });
}

async function ztocOf(
  layer: Uint8Array,
  options: { spanSize?: number; buildToolId?: string; compression?: string } = {},
): Promise<{ bytes: Uint8Array; summary: ZtocSummary }> {
  const built = await buildZtoc(
    (async function* () {
      yield layer;
    })(),
    { spanSize: SPAN, buildToolId: TOOL, compression: 'gzip', ...options },
  );
  assert.ok(built.indexable, 'the test layer is indexable');
  return { bytes: built.bytes, summary: built.summary };
}

function invalidReason(lookup: CacheLookup): string {
  assert.ok('miss' in lookup, `expected a miss, got a hit for ${'hit' in lookup ? lookup.hit.descriptor.digest : ''}`);
  assert.equal(lookup.miss, 'invalid', `expected an invalid entry, got ${lookup.miss}`);
  return lookup.reason ?? '';
}

describe('zTOC cache key', () => {
  const base: ZtocCacheKey = { layerDigest: sha256Digest(new Uint8Array([1])), compression: 'gzip', spanSize: SPAN, buildToolId: TOOL };

  test('the tag names the layer, fits the tag grammar and changes with every field of the key', () => {
    const tag = cacheTag(base);
    assert.ok(isTag(tag), tag);
    assert.ok(tag.startsWith(`sha256-${base.layerDigest.slice('sha256:'.length)}.`), tag);
    const variants: ZtocCacheKey[] = [
      { ...base, layerDigest: sha256Digest(new Uint8Array([2])) },
      { ...base, compression: 'uncompressed' },
      { ...base, spanSize: SPAN * 2 },
      { ...base, buildToolId: `${TOOL} 2` },
    ];
    const tags = new Set([tag, ...variants.map(cacheTag)]);
    assert.equal(tags.size, 1 + variants.length, 'each variant of the key gets its own tag');
    assert.equal(cacheTag({ ...base }), tag, 'the same key gets the same tag');
  });

  test('the entry records the formats and the tool version as well as the key', () => {
    const fields = Object.entries(keyFields(base)).map(([name, value]) => [name.replace(/^.*\./, ''), value]);
    assert.deepEqual(Object.fromEntries(fields), {
      'layer-digest': base.layerDigest,
      compression: 'gzip',
      'span-size': String(SPAN),
      'build-tool-id': TOOL,
      'ztoc-version': ZTOC_VERSION,
      format: ZTOC_CACHE_FORMAT,
      'tool-version': VERSION,
    });
  });
});

describe('zTOC cache lookup: only an entry that checks out is a hit', () => {
  let tar: Uint8Array;
  let layer: Uint8Array;
  let layerDesc: Descriptor;
  let good: { bytes: Uint8Array; summary: ZtocSummary };
  let key: ZtocCacheKey;
  before(async () => {
    tar = await tarLayer();
    layer = gzipSync(tar);
    layerDesc = descriptorFor(MEDIA_TYPE_OCI_LAYER_GZIP, layer);
    good = await ztocOf(layer);
    key = { layerDigest: layerDesc.digest, compression: 'gzip', spanSize: SPAN, buildToolId: TOOL };
  });

  /** A cache holding the right zTOC under `key`, and its entry's manifest. */
  async function storedCache() {
    const target = new MemoryTarget('cache');
    const cache = new RepositoryZtocCache(target);
    await cache.store(key, good.bytes, good.summary);
    const entry = await target.resolve(cacheTag(key));
    const manifest = parseManifest(await target.fetchBytes(entry));
    return { target, cache, entry, manifest };
  }

  /** Re-tags the entry with a manifest changed by `change`. */
  async function forged(change: (manifest: ReturnType<typeof parseManifest>) => object): Promise<RepositoryZtocCache> {
    const { target, cache, manifest } = await storedCache();
    const bytes = marshalManifest(change(structuredClone(manifest)) as ReturnType<typeof parseManifest>);
    const desc = descriptorFor(MEDIA_TYPE_OCI_MANIFEST, bytes);
    await target.push(desc, bytes);
    await target.tag(desc, cacheTag(key));
    return cache;
  }

  /** A cache whose entry for `key` holds `bytes` as its zTOC (stored through the cache itself). */
  async function holding(ztoc: { bytes: Uint8Array; summary: ZtocSummary }): Promise<RepositoryZtocCache> {
    const cache = new RepositoryZtocCache(new MemoryTarget('cache'));
    await cache.store(key, ztoc.bytes, ztoc.summary);
    return cache;
  }

  test('the entry as stored is a hit with the zTOC and its summary', async () => {
    const { cache } = await storedCache();
    const lookup = await cache.lookup(key, layerDesc.size);
    assert.ok('hit' in lookup, JSON.stringify(lookup));
    assert.deepEqual(lookup.hit.descriptor, { mediaType: SOCI_ZTOC_MEDIA_TYPE, digest: good.summary.digest, size: good.summary.size });
    assert.deepEqual(lookup.hit.bytes, good.bytes);
    assert.deepEqual(lookup.hit.summary, good.summary);
  });

  test('another span size, build tool or compression is a plain miss (absent), not a wrong hit', async () => {
    const { cache } = await storedCache();
    for (const other of [{ spanSize: SPAN * 2 }, { buildToolId: 'another tool' }, { compression: 'uncompressed' }]) {
      assert.deepEqual(await cache.lookup({ ...key, ...other }, layerDesc.size), { miss: 'absent' }, JSON.stringify(other));
    }
  });

  test('a tag that names an index, not a manifest, is invalid', async () => {
    const { target, cache } = await storedCache();
    const bytes = marshalIndex({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [] });
    const desc = descriptorFor(MEDIA_TYPE_OCI_INDEX, bytes);
    await target.push(desc, bytes);
    await target.tag(desc, cacheTag(key));
    assert.match(invalidReason(await cache.lookup(key, layerDesc.size)), /not an OCI manifest/);
  });

  test('another config type is invalid', async () => {
    const cache = await forged((m) => ({ ...m, config: { ...m.config, mediaType: 'application/vnd.oci.image.config.v1+json' } }));
    assert.match(invalidReason(await cache.lookup(key, layerDesc.size)), /config type/);
  });

  test('every field of the key is checked in the entry: another format, tool version, zTOC version or key is invalid', async () => {
    for (const name of Object.keys(keyFields(key))) {
      for (const value of ['other', undefined]) {
        const cache = await forged((m) => {
          const annotations = { ...m.annotations };
          if (value === undefined) delete annotations[name];
          else annotations[name] = value;
          return { ...m, annotations };
        });
        assert.match(
          invalidReason(await cache.lookup(key, layerDesc.size)),
          new RegExp(`annotation ${name.replace(/\./g, '\\.')} is`),
          name,
        );
      }
    }
  });

  test('an entry with two layers, or none, is invalid', async () => {
    const two = await forged((m) => ({ ...m, layers: [m.layers![0], m.layers![0]] }));
    assert.match(invalidReason(await two.lookup(key, layerDesc.size)), /has 2 layers, not 1/);
    const none = await forged((m) => ({ ...m, layers: [] }));
    assert.match(invalidReason(await none.lookup(key, layerDesc.size)), /has 0 layers, not 1/);
  });

  test('the right zTOC bytes under another media type are invalid', async () => {
    const cache = await forged((m) => ({ ...m, layers: [{ ...m.layers![0], mediaType: MEDIA_TYPE_OCI_LAYER }] }));
    assert.match(invalidReason(await cache.lookup(key, layerDesc.size)), /zTOC media type "application\/vnd\.oci\.image\.layer\.v1\.tar"/);
  });

  test('a zTOC size out of range is invalid before the blob is read', async () => {
    for (const size of [0, MAX_CACHED_ZTOC_BYTES + 1]) {
      const cache = await forged((m) => ({ ...m, layers: [{ ...m.layers![0], size }] }));
      const reads: string[] = [];
      const fetchBytes = cache.target.fetchBytes.bind(cache.target);
      cache.target.fetchBytes = (desc, options) => {
        reads.push(desc.digest);
        return fetchBytes(desc, options);
      };
      assert.match(invalidReason(await cache.lookup(key, layerDesc.size)), new RegExp(`zTOC size ${size} is out of range`));
      assert.ok(!reads.includes(good.summary.digest), 'the zTOC blob is not read');
    }
  });

  test('a zTOC blob whose bytes do not match its digest is invalid', async () => {
    const { target, cache } = await storedCache();
    const stored = target.blobs.get(good.summary.digest)!;
    target.blobs.set(
      good.summary.digest,
      stored.map((b) => b ^ 0xff),
    );
    assert.match(invalidReason(await cache.lookup(key, layerDesc.size)), /digest/);
  });

  test('a zTOC whose own header disagrees with the key is invalid: build tool, span size, compression, version, layer size', async () => {
    const otherTool = await holding(await ztocOf(layer, { buildToolId: 'another tool' }));
    assert.match(
      invalidReason(await otherTool.lookup(key, layerDesc.size)),
      /build tool id is "another tool", expected "cache-entries-test"/,
    );

    const otherSpan = await holding(await ztocOf(layer, { spanSize: SPAN / 2 }));
    assert.match(invalidReason(await otherSpan.lookup(key, layerDesc.size)), new RegExp(`span size is ${SPAN / 2}, expected ${SPAN}`));

    // The zTOC of the same files as a plain tar layer: same tool and span, another compression.
    const asTar = await holding(await ztocOf(tar, { compression: 'uncompressed' }));
    assert.match(invalidReason(await asTar.lookup(key, layerDesc.size)), /compression is "uncompressed", expected "gzip"/);

    const parsed = parseZtoc(good.bytes);
    const oldBytes = serializeZtoc({ ...parsed, version: '0.8' });
    const oldVersion = await holding({
      bytes: oldBytes,
      summary: { ...good.summary, digest: sha256Digest(oldBytes), size: oldBytes.length },
    });
    assert.match(invalidReason(await oldVersion.lookup(key, layerDesc.size)), /version is "0\.8", expected "0\.9"/);

    // The right zTOC, asked for by a layer of another size (the key's digest was reused for other bytes).
    const { cache } = await storedCache();
    assert.match(
      invalidReason(await cache.lookup(key, layerDesc.size + 1)),
      new RegExp(`compressed size is ${layerDesc.size}, expected ${layerDesc.size + 1}`),
    );
  });

  test('a transient failure reading the zTOC blob is thrown (a cache failure), not an invalid entry', async () => {
    const { target, cache } = await storedCache();
    const fetchBytes = target.fetchBytes.bind(target);
    target.fetchBytes = (desc, options) =>
      desc.digest === good.summary.digest ? Promise.reject(new TransientTargetError('503 from the cache')) : fetchBytes(desc, options);
    await assert.rejects(cache.lookup(key, layerDesc.size), /503 from the cache/);
  });

  test('a backend that returns a zTOC blob of the wrong length (breaking the Target contract) gives an invalid entry', async () => {
    const { target, cache } = await storedCache();
    const fetchBytes = target.fetchBytes.bind(target);
    target.fetchBytes = async (desc, options) => {
      const bytes = await fetchBytes(desc, options);
      return desc.digest === good.summary.digest ? bytes.subarray(0, bytes.length - 1) : bytes;
    };
    assert.match(invalidReason(await cache.lookup(key, layerDesc.size)), /does not match/);
  });

  test('a blob that is not a zTOC is invalid', async () => {
    const garbage = new TextEncoder().encode('not a zTOC');
    const cache = await holding({ bytes: garbage, summary: { ...good.summary, digest: sha256Digest(garbage), size: garbage.length } });
    assert.match(invalidReason(await cache.lookup(key, layerDesc.size)), /zTOC/);
  });
});

describe('zTOC cache place: mounted where the output can, else copied', () => {
  const bytes = new TextEncoder().encode('a zTOC, for placing');
  const blob = { descriptor: descriptorFor(SOCI_ZTOC_MEDIA_TYPE, bytes), bytes };

  /** A MemoryTarget with a mountFrom that answers `mount` (a value, or a failure to throw). */
  function mounting(mount: boolean | Error): MemoryTarget & { mounts: number } {
    const target = Object.assign(new MemoryTarget('output'), { mounts: 0 });
    (target as Target).mountFrom = async (desc: Descriptor, from: Target) => {
      target.mounts++;
      if (mount instanceof Error) throw mount;
      if (mount) target.blobs.set(desc.digest, await from.fetchBytes(desc));
      return mount;
    };
    return target;
  }

  test('a mount the output accepts: mounted, nothing copied', async () => {
    const cacheTarget = new MemoryTarget('cache');
    await cacheTarget.push(blob.descriptor, bytes);
    const output = mounting(true);
    const pushes: string[] = [];
    const push = output.push.bind(output);
    output.push = async (desc, content, options) => {
      pushes.push(desc.digest);
      return push(desc, content, options);
    };
    assert.equal(await new RepositoryZtocCache(cacheTarget).place(blob, output), 'mounted');
    assert.equal(output.mounts, 1);
    assert.deepEqual(pushes, [], 'nothing copied');
  });

  test('a refused or failing mount, or an output that cannot mount: the bytes are copied', async () => {
    const cache = new RepositoryZtocCache(new MemoryTarget('cache'));
    for (const output of [mounting(false), mounting(new Error('mount refused: 403')), new MemoryTarget('plain')]) {
      assert.equal(await cache.place(blob, output), 'copied');
      assert.deepEqual(await output.fetchBytes(blob.descriptor), bytes, output.description);
    }
  });

  test('the cache repository itself as the output: already present, nothing written', async () => {
    const target = new MemoryTarget('cache');
    const cache = new RepositoryZtocCache(target);
    assert.equal(await cache.place(blob, target), 'present');
    assert.equal(await target.exists(blob.descriptor), false);
  });
});
