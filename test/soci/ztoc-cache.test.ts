// The zTOC cache against a real docker-registry, seen through the test proxy so that layer reads and
// mounts can be counted: reuse within a repository and across repositories (by cross-repository mount),
// another span size that does not reuse, index-level options that do. Every output is compared with a
// build of the same image without the cache. (Bad entries, failures, resume: ztoc-cache-faults.test.ts.)
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { sha256Digest } from '../../lambda/oci/digest.ts';
import { EMPTY_JSON_CONFIG } from '../../lambda/oci/media-types.ts';
import { buildSociIndex } from '../../lambda/soci/build.ts';
import type { BuildEvent, BuildOptions } from '../../lambda/soci/types.ts';
import { cacheTag, type ZtocCacheKey } from '../../lambda/soci/ztoc-cache.ts';
import type { ZtocSummary } from '../../lambda/ztoc/builder.ts';
import type { FaultProxy } from '../support/fault-proxy.ts';
import type { BuiltLayout } from '../support/images.ts';
import { options, ztocCacheWorld } from '../support/ztoc-cache-world.ts';

describe('zTOC cache against docker-registry', () => {
  const world = ztocCacheWorld();
  const { target, cache, push, layersOf, layerGets, assertSameAsScratch, ztocModes } = world;
  let proxy: FaultProxy;
  let one: BuiltLayout;
  let two: BuiltLayout;
  before(() => {
    ({ proxy, one, two } = world);
  });
  /** The build's warnings, as an assertion message: a cache miss or failure then says why. */
  const warningsOf = (events: BuildEvent[]) =>
    events.flatMap((e) => (e.type === 'log' && e.level === 'warn' ? [e.message] : [])).join('\n') || '(no warnings)';

  test('within a repository: the second image reads only its own layer, same output as from scratch', async () => {
    await push(one, 'within/app:v1');
    await push(two, 'within/app:v2');
    const first = await buildSociIndex(target('within/app'), 'v1', { ...options, ztocCache: cache('cache/within') });
    assert.deepEqual(ztocModes(first), ['built', 'built', 'built', 'built']);
    assert.equal(first.cache?.stored, 4);
    assert.equal(first.cache?.misses, 4);
    assert.equal(
      first.bytesRead,
      layersOf(one).reduce((n, l) => n + l.size, 0),
    );

    const events: BuildEvent[] = [];
    const reads = layerGets(layersOf(two));
    const second = await buildSociIndex(target('within/app'), 'v2', {
      ...options,
      ztocCache: cache('cache/within'),
      onEvent: (e) => events.push(e),
    });
    assert.deepEqual(ztocModes(second), ['reused', 'reused', 'reused', 'built']);
    assert.equal(second.bytesRead, layersOf(two)[3]!.size, 'only the layer not in the cache is read');
    assert.equal(layerGets(layersOf(two)) - reads, 1, 'one layer GET');
    assert.deepEqual(
      {
        reused: second.cache?.reused,
        bytesSaved: second.cache?.bytesSaved,
        stored: second.cache?.stored,
        failures: second.cache?.failures,
      },
      {
        reused: 3,
        bytesSaved: layersOf(two)
          .slice(0, 3)
          .reduce((n, l) => n + l.size, 0),
        stored: 1,
        failures: 0,
      },
    );
    // A reused layer is not read, so it never starts.
    assert.deepEqual(
      events.filter((e) => e.type === 'layer-start').map((e) => e.type === 'layer-start' && e.layer),
      [layersOf(two)[3]!.digest],
    );
    await assertSameAsScratch('within/app', second, two);
  });

  test('across repositories: shared zTOCs are mounted from the cache repository, not read or uploaded', async () => {
    await push(one, 'across/one:v1');
    await push(two, 'across/two:v2');
    const firstEvents: BuildEvent[] = [];
    const first = await buildSociIndex(target('across/one'), 'v1', {
      ...options,
      ztocCache: cache('cache/across'),
      onEvent: (e) => firstEvents.push(e),
    });
    assert.equal(first.cache?.stored, 4, warningsOf(firstEvents));
    const mark = proxy.requests.length;
    const events: BuildEvent[] = [];
    const second = await buildSociIndex(target('across/two'), 'v2', {
      ...options,
      ztocCache: cache('cache/across'),
      onEvent: (e) => events.push(e),
    });
    assert.deepEqual(ztocModes(second), ['reused', 'reused', 'reused', 'built'], warningsOf(events));
    assert.equal(second.bytesRead, layersOf(two)[3]!.size);
    const requests = proxy.requests.slice(mark);
    const mounts = requests.filter((r) => r.method === 'POST' && r.path === '/v2/across/two/blobs/uploads/' && r.search.includes('mount='));
    // The three reused zTOCs, and the new one once it is in the cache: each mounted, none uploaded to across/two.
    const ztocDigests = second.platforms[0]!.layers.map((l) => l.ztocDigest!);
    assert.deepEqual(mounts.map((r) => ztocDigests.findIndex((d) => r.search.includes(encodeURIComponent(d)))).sort(), [0, 1, 2, 3]);
    assert.ok(
      mounts.every((r) => r.status === 201 && r.search.includes('from=cache%2Facross')),
      JSON.stringify(mounts),
    );
    const ztocUploads = requests.filter(
      (r) =>
        r.method === 'PUT' &&
        r.path.startsWith('/v2/across/two/blobs/uploads/') &&
        ztocDigests.some((d) => r.search.includes(encodeURIComponent(d))),
    );
    assert.deepEqual(ztocUploads, []);
    await assertSameAsScratch('across/two', second, two);
  });

  test('another span size is another key: nothing reused; the xattr optimisation and prefetch reuse', async () => {
    await push(one, 'config/a:v1');
    await push(one, 'config/b:v1');
    await push(one, 'config/c:v1');
    const first = await buildSociIndex(target('config/a'), 'v1', { ...options, ztocCache: cache('cache/config') });
    assert.equal(first.cache?.stored, 4);
    const otherSpan = await buildSociIndex(target('config/b'), 'v1', { ...options, spanSize: 32768, ztocCache: cache('cache/config') });
    assert.deepEqual(ztocModes(otherSpan), ['built', 'built', 'built', 'built']);
    assert.equal(otherSpan.cache?.reused, 0);
    assert.equal(otherSpan.cache?.invalid, 0, 'a different key is a plain miss');
    await assertSameAsScratch('config/b', otherSpan, one, { spanSize: 32768 });

    // Index-level options do not change the zTOC: reused, and the index is what a build from scratch gives.
    const extra: Partial<BuildOptions> = { optimizations: ['xattr'], prefetchFiles: ['/base/os.bin', 'deps/vendor.bin'] };
    const indexOptions = await buildSociIndex(target('config/c'), 'v1', { ...options, ...extra, ztocCache: cache('cache/config') });
    assert.deepEqual(ztocModes(indexOptions), ['reused', 'reused', 'reused', 'reused']);
    assert.equal(indexOptions.bytesRead, 0);
    await assertSameAsScratch('config/c', indexOptions, one, extra);
  });

  test("zTOCs stored at once push the entries' shared config blob once, so no store races another", async () => {
    // Two uploads of one blob make docker-registry rewrite its link file in place; a manifest PUT reading
    // it meanwhile fails (400 DIGEST_INVALID) and that entry is lost. One push per cache object avoids it.
    const shared = cache('cache/concurrent');
    const entries = Array.from({ length: 6 }, (_, i) => {
      const bytes = new TextEncoder().encode(`not really a zTOC ${i}`);
      const key: ZtocCacheKey = {
        layerDigest: sha256Digest(new TextEncoder().encode(`layer ${i}`)),
        compression: 'gzip',
        spanSize: 65536,
        buildToolId: 'test',
      };
      return { key, bytes, summary: { digest: sha256Digest(bytes), size: bytes.length } as ZtocSummary };
    });
    const mark = proxy.requests.length;
    await Promise.all(entries.map((e) => shared.store(e.key, e.bytes, e.summary)));
    const configRequests = proxy.requests
      .slice(mark)
      .filter(
        (r) =>
          r.path === `/v2/cache/concurrent/blobs/${EMPTY_JSON_CONFIG.digest}` ||
          r.search.includes(encodeURIComponent(EMPTY_JSON_CONFIG.digest)),
      );
    assert.deepEqual(
      configRequests.map((r) => r.method),
      ['HEAD', 'PUT'],
      'one existence check and one upload of the config',
    );
    const reader = target('cache/concurrent');
    for (const e of entries) assert.equal((await reader.resolve(cacheTag(e.key))).mediaType, 'application/vnd.oci.image.manifest.v1+json');
    // A later store into the same cache object does not ask again.
    const later = proxy.requests.length;
    await shared.store(entries[0]!.key, entries[0]!.bytes, entries[0]!.summary);
    assert.equal(
      proxy.requests
        .slice(later)
        .filter((r) => r.path.endsWith(EMPTY_JSON_CONFIG.digest) || r.search.includes(encodeURIComponent(EMPTY_JSON_CONFIG.digest))).length,
      0,
    );
  });
});
