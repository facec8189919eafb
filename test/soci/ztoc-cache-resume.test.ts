// Builds that resume: a build stopped at its deadline has already put every zTOC it finished into the
// cache, so its retry reads only the remaining layers and produces what an uninterrupted build produces.
// Against a real docker-registry behind the test proxy.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { OciLayoutTarget } from '../../lambda/layout/oci-layout.ts';
import type { Descriptor } from '../../lambda/oci/target.ts';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { DEFAULT_BUILD_OPTIONS, buildSociIndex } from '../../lambda/soci/build.ts';
import { SociError, type BuildOptions, type BuildResult } from '../../lambda/soci/types.ts';
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

describe('zTOC cache: resume after a deadline', () => {
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

  test('a build stopped at its deadline resumes: the retry reads only the layers not yet cached', async () => {
    await push(one, 'resume/app:v1');
    const opts: BuildOptions = {
      ...options,
      concurrency: 1,
      ztocCache: cache('cache/resume'),
      deadline: Date.now() + 600_000,
      // After the first layer the deadline is (all but) reached: the layer being read is finished and
      // cached, then the build stops before pushing anything more.
      onEvent: (e) => {
        if (e.type === 'layer-done') opts.deadline = Date.now() + 100;
      },
    };
    await assert.rejects(buildSociIndex(target('resume/app'), 'v1', opts), (err: unknown) => err instanceof SociError && err.kind === 'transient' && /^deadline: .*pushing/.test(err.message));
    await assert.rejects(target('resume/app').resolve('v1-soci'), 'nothing tagged');
    const layers = layersOf(one);
    const retry = await buildSociIndex(target('resume/app'), 'v1', { ...options, ztocCache: cache('cache/resume') });
    assert.deepEqual(ztocModes(retry), ['reused', 'reused', 'built', 'built']);
    assert.equal(retry.bytesRead, layers[2]!.size + layers[3]!.size);
    await assertSameAsScratch('resume/app', retry, one);
  });
});
