// What the zTOC cache tests share: a real docker-registry behind the counting test proxy, two images that
// share three of their four layers, and the checks that a cached build equals a build from scratch.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { OciLayoutTarget } from '../../lambda/layout/oci-layout.ts';
import type { Descriptor } from '../../lambda/oci/target.ts';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { OciRegistryListing } from '../../lambda/registry/listing.ts';
import { buildSociIndex, DEFAULT_BUILD_OPTIONS } from '../../lambda/soci/build.ts';
import type { BuildOptions, BuildResult } from '../../lambda/soci/types.ts';
import { RepositoryZtocCache } from '../../lambda/soci/ztoc-cache.ts';
import { assertComplete } from '../soci/helpers.ts';
import { type FaultProxy, startFaultProxy } from './fault-proxy.ts';
import { type BuiltLayout, buildLayout, type LayerSpec } from './images.ts';
import { type RunningRegistry, startRegistry } from './registry.ts';

const SHARED: LayerSpec[] = [
  {
    compression: 'gzip',
    files: [
      { name: 'base/os.bin', size: 300_000 },
      { name: 'base/etc/passwd', size: 2000 },
    ],
  },
  { compression: 'uncompressed', files: [{ name: 'runtime/lib.bin', size: 200_000 }] },
  { compression: 'gzip', files: [{ name: 'deps/vendor.bin', size: 250_000 }] },
];
const ONE: LayerSpec[] = [...SHARED, { compression: 'gzip', files: [{ name: 'app/one.bin', size: 220_000 }] }];
const TWO: LayerSpec[] = [...SHARED, { compression: 'gzip', files: [{ name: 'app/two.bin', size: 230_000 }] }];
export const options: BuildOptions = { ...DEFAULT_BUILD_OPTIONS, spanSize: 65536, minLayerSize: 1000, concurrency: 2 };

export interface ZtocCacheWorld {
  registry: RunningRegistry;
  proxy: FaultProxy;
  /** Four layers; `two` shares the first three. */
  one: BuiltLayout;
  two: BuiltLayout;
  target(repository: string): RegistryTarget;
  cache(repository: string): RepositoryZtocCache;
  /** Copies a layout's image into `repository:tag` through the Target API (quicker than skopeo). */
  push(layout: BuiltLayout, ref: string): Promise<void>;
  layersOf(layout: BuiltLayout): Descriptor[];
  /** GETs of these layers' blobs so far, in any repository. */
  layerGets(layers: Descriptor[]): number;
  /** The same image built without the cache (nothing pushed): what a cached build must reproduce. */
  fromScratch(layout: BuiltLayout, extra?: Partial<BuildOptions>): Promise<BuildResult>;
  /** Same output digest, the same SOCI index per platform, and every blob the output names is there. */
  assertSameAsScratch(repository: string, result: BuildResult, layout: BuiltLayout, extra?: Partial<BuildOptions>): Promise<void>;
  ztocModes(result: BuildResult): (string | undefined)[];
  /** The layer digests a cache repository holds a zTOC for, read from its tag listing. */
  cachedLayers(repository: string): Promise<Set<string>>;
}

/** The layer digests a cache repository holds a zTOC for, read from its tag listing. */
export async function cachedLayerDigests(listing: OciRegistryListing, repository: string): Promise<Set<string>> {
  const layers = new Set<string>();
  for await (const { tag } of listing.tags(repository)) {
    // `sha256-<layer hex>.<key hash>` (soci/ztoc-cache.ts cacheTag)
    const match = /^(sha256)-([0-9a-f]{64})\./.exec(tag);
    if (match) layers.add(`${match[1]}:${match[2]}`);
  }
  return layers;
}

/** Registers the before/after hooks of the enclosing suite; the fields are set once `before` has run. */
export function ztocCacheWorld(): ZtocCacheWorld {
  const world = {
    target: (repository: string) => new RegistryTarget({ registry: world.proxy.host, repository, retry: { baseDelayMs: 5 } }),
    cache: (repository: string) => new RepositoryZtocCache(world.target(repository)),
    async push(layout: BuiltLayout, ref: string) {
      const [repository, tag] = ref.split(':') as [string, string];
      const repo = world.target(repository);
      const image = layout.images[0]!;
      for (const blob of [image.config, ...image.layers]) await repo.push(blob, layout.blobs.get(blob.digest)!);
      await repo.push(image.manifest, layout.blobs.get(image.manifest.digest)!);
      await repo.tag(image.manifest, tag);
    },
    layersOf: (layout: BuiltLayout) => layout.images[0]!.layers,
    layerGets: (layers: Descriptor[]) =>
      layers.reduce(
        (n, l) => n + world.proxy.requests.filter((r) => r.method === 'GET' && r.path.endsWith(`/blobs/${l.digest}`)).length,
        0,
      ),
    async fromScratch(layout: BuiltLayout, extra: Partial<BuildOptions> = {}) {
      return buildSociIndex(await OciLayoutTarget.open(layout.dir), layout.tag, { ...options, ...extra, dryRun: true });
    },
    async assertSameAsScratch(repository: string, result: BuildResult, layout: BuiltLayout, extra: Partial<BuildOptions> = {}) {
      const scratch = await world.fromScratch(layout, extra);
      assert.equal(result.status, 'created', result.message);
      assert.equal(result.output?.digest, scratch.output?.digest);
      assert.deepEqual(
        result.platforms.map((p) => p.indexDigest),
        scratch.platforms.map((p) => p.indexDigest),
      );
      assert.deepEqual(
        result.platforms.flatMap((p) => p.layers.map((l) => l.ztocDigest)),
        scratch.platforms.flatMap((p) => p.layers.map((l) => l.ztocDigest)),
      );
      await assertComplete(world.target(repository), await world.target(repository).resolve(result.output!.tags[0]!));
    },
    ztocModes: (result: BuildResult) => result.platforms[0]!.layers.map((l) => l.ztoc),
    cachedLayers: (repository: string) => cachedLayerDigests(new OciRegistryListing({ registry: world.registry.host }), repository),
  } as ZtocCacheWorld;
  before(async () => {
    world.registry = await startRegistry();
    world.proxy = await startFaultProxy({ upstream: world.registry.host });
    world.one = await buildLayout({ layers: ONE, tag: 'v1' });
    world.two = await buildLayout({ layers: TWO, tag: 'v2' });
  });
  after(async () => {
    await world.proxy?.stop();
    await world.registry?.stop();
  });
  return world;
}
