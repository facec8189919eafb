// The zTOC cache against a real docker-registry, seen through the test proxy so that layer reads and
// mounts can be counted: reuse within a repository and across repositories (by cross-repository mount),
// another span size that does not reuse, index-level options that do. Every output is compared with a
// build of the same image without the cache. (Bad entries, failures, resume: ztoc-cache-faults.test.ts.)
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { buildSociIndex } from '../../lambda/soci/build.ts';
import type { BuildEvent, BuildOptions } from '../../lambda/soci/types.ts';
import { type FaultProxy } from '../support/fault-proxy.ts';
import { type BuiltLayout } from '../support/images.ts';
import { type RunningRegistry } from '../support/registry.ts';
import { options, ztocCacheWorld } from '../support/ztoc-cache-world.ts';

describe('zTOC cache against docker-registry', () => {
  const world = ztocCacheWorld();
  const { target, cache, push, layersOf, layerGets, fromScratch, assertSameAsScratch, ztocModes } = world;
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let one: BuiltLayout;
  let two: BuiltLayout;
  before(() => {
    ({ registry, proxy, one, two } = world);
  });

  test('within a repository: the second image reads only its own layer, same output as from scratch', async () => {
    await push(one, 'within/app:v1');
    await push(two, 'within/app:v2');
    const first = await buildSociIndex(target('within/app'), 'v1', { ...options, ztocCache: cache('cache/within') });
    assert.deepEqual(ztocModes(first), ['built', 'built', 'built', 'built']);
    assert.equal(first.cache?.stored, 4);
    assert.equal(first.cache?.misses, 4);
    assert.equal(first.bytesRead, layersOf(one).reduce((n, l) => n + l.size, 0));

    const events: BuildEvent[] = [];
    const reads = layerGets(layersOf(two));
    const second = await buildSociIndex(target('within/app'), 'v2', { ...options, ztocCache: cache('cache/within'), onEvent: (e) => events.push(e) });
    assert.deepEqual(ztocModes(second), ['reused', 'reused', 'reused', 'built']);
    assert.equal(second.bytesRead, layersOf(two)[3]!.size, 'only the layer not in the cache is read');
    assert.equal(layerGets(layersOf(two)) - reads, 1, 'one layer GET');
    assert.deepEqual(
      { reused: second.cache?.reused, bytesSaved: second.cache?.bytesSaved, stored: second.cache?.stored, failures: second.cache?.failures },
      { reused: 3, bytesSaved: layersOf(two).slice(0, 3).reduce((n, l) => n + l.size, 0), stored: 1, failures: 0 },
    );
    // A reused layer is not read, so it never starts.
    assert.deepEqual(events.filter((e) => e.type === 'layer-start').map((e) => e.type === 'layer-start' && e.layer), [layersOf(two)[3]!.digest]);
    await assertSameAsScratch('within/app', second, two);
  });

  test('across repositories: shared zTOCs are mounted from the cache repository, not read or uploaded', async () => {
    await push(one, 'across/one:v1');
    await push(two, 'across/two:v2');
    const first = await buildSociIndex(target('across/one'), 'v1', { ...options, ztocCache: cache('cache/across') });
    assert.equal(first.cache?.stored, 4);
    const mark = proxy.requests.length;
    const second = await buildSociIndex(target('across/two'), 'v2', { ...options, ztocCache: cache('cache/across') });
    assert.deepEqual(ztocModes(second), ['reused', 'reused', 'reused', 'built']);
    assert.equal(second.bytesRead, layersOf(two)[3]!.size);
    const requests = proxy.requests.slice(mark);
    const mounts = requests.filter((r) => r.method === 'POST' && r.path === '/v2/across/two/blobs/uploads/' && r.search.includes('mount='));
    assert.equal(mounts.length, 3);
    assert.ok(mounts.every((r) => r.status === 201 && r.search.includes('from=cache%2Facross')), JSON.stringify(mounts));
    // The only upload sessions in across/two are the new zTOC, the SOCI index config... never a reused zTOC.
    const uploadsOfReused = requests.filter((r) => r.method === 'PUT' && r.path.startsWith('/v2/across/two/blobs/uploads/') && second.platforms[0]!.layers.slice(0, 3).some((l) => r.search.includes(encodeURIComponent(l.ztocDigest!))));
    assert.deepEqual(uploadsOfReused, []);
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

});
