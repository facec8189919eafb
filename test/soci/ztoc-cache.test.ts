// The zTOC cache against a real docker-registry, seen through the test proxy so that layer reads and
// mounts can be counted: reuse within a repository and across repositories (by cross-repository mount),
// another span size that does not reuse, index-level options that do. Every output is compared with a
// build of the same image without the cache. (Bad entries, failures, resume: ztoc-cache-faults.test.ts.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { OciLayoutTarget } from '../../lambda/layout/oci-layout.ts';
import type { Descriptor } from '../../lambda/oci/target.ts';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { DEFAULT_BUILD_OPTIONS, buildSociIndex } from '../../lambda/soci/build.ts';
import type { BuildEvent, BuildOptions, BuildResult } from '../../lambda/soci/types.ts';
import { RepositoryZtocCache } from '../../lambda/soci/ztoc-cache.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { buildLayout, type BuiltLayout, type LayerSpec } from '../support/images.ts';
import { startRegistry, type RunningRegistry } from '../support/registry.ts';
import { assertComplete } from './helpers.ts';

const SHARED: LayerSpec[] = [
  { compression: 'gzip', files: [{ name: 'base/os.bin', size: 300_000 }, { name: 'base/etc/passwd', size: 2000 }] },
  { compression: 'uncompressed', files: [{ name: 'runtime/lib.bin', size: 200_000 }] },
  { compression: 'gzip', files: [{ name: 'deps/vendor.bin', size: 250_000 }] },
];
const ONE: LayerSpec[] = [...SHARED, { compression: 'gzip', files: [{ name: 'app/one.bin', size: 220_000 }] }];
const TWO: LayerSpec[] = [...SHARED, { compression: 'gzip', files: [{ name: 'app/two.bin', size: 230_000 }] }];
const options: BuildOptions = { ...DEFAULT_BUILD_OPTIONS, spanSize: 65536, minLayerSize: 1000, concurrency: 2 };

describe('zTOC cache against docker-registry', () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let one: BuiltLayout;
  let two: BuiltLayout;
  const target = (repository: string) => new RegistryTarget({ registry: proxy.host, repository, retry: { baseDelayMs: 5 } });
  const cache = (repository: string) => new RepositoryZtocCache(target(repository));
  /** Copies a layout's image into `repository:tag` through the Target API (quicker than skopeo). */
  const push = async (layout: BuiltLayout, ref: string) => {
    const [repository, tag] = ref.split(':') as [string, string];
    const repo = target(repository);
    const image = layout.images[0]!;
    for (const blob of [image.config, ...image.layers]) await repo.push(blob, layout.blobs.get(blob.digest)!);
    await repo.push(image.manifest, layout.blobs.get(image.manifest.digest)!);
    await repo.tag(image.manifest, tag);
  };
  const layersOf = (layout: BuiltLayout) => layout.images[0]!.layers;
  /** GETs of these layers' blobs so far, in any repository. */
  const layerGets = (layers: Descriptor[]) => layers.reduce((n, l) => n + proxy.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${l.digest}`)).length, 0);

  before(async () => {
    registry = await startRegistry();
    proxy = await startFaultProxy({ upstream: registry.host });
    one = await buildLayout({ layers: ONE, tag: 'v1' });
    two = await buildLayout({ layers: TWO, tag: 'v2' });
  });
  after(async () => {
    await proxy?.stop();
    await registry?.stop();
  });

  /** The same image built without the cache (nothing pushed): what a cached build must reproduce. */
  async function fromScratch(layout: BuiltLayout, extra: Partial<BuildOptions> = {}): Promise<BuildResult> {
    return buildSociIndex(await OciLayoutTarget.open(layout.dir), layout.tag, { ...options, ...extra, dryRun: true });
  }

  /** Same output digest, the same SOCI index per platform, and every blob the output names is there. */
  async function assertSameAsScratch(repository: string, result: BuildResult, layout: BuiltLayout, extra: Partial<BuildOptions> = {}): Promise<void> {
    const scratch = await fromScratch(layout, extra);
    assert.equal(result.status, 'created', result.message);
    assert.equal(result.output?.digest, scratch.output?.digest);
    assert.deepEqual(result.platforms.map((p) => p.indexDigest), scratch.platforms.map((p) => p.indexDigest));
    assert.deepEqual(
      result.platforms.flatMap((p) => p.layers.map((l) => l.ztocDigest)),
      scratch.platforms.flatMap((p) => p.layers.map((l) => l.ztocDigest)),
    );
    await assertComplete(target(repository), await target(repository).resolve(result.output!.tags[0]!));
  }

  const ztocModes = (result: BuildResult) => result.platforms[0]!.layers.map((l) => l.ztoc);

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
