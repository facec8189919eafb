// With a zTOC cache, a layer to build must not wait for the other layers' lookups (each a zTOC
// download): its build starts as soon as its own lookup says "miss". Unit tier: MemoryTargets, a real
// RepositoryZtocCache, and a cache wrapper that holds the hit's lookup until the miss's build starts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryTarget } from '../../lambda/memory/memory-target.ts';
import { buildSociIndex, DEFAULT_BUILD_OPTIONS } from '../../lambda/soci/build.ts';
import type { BuildEvent, BuildOptions } from '../../lambda/soci/types.ts';
import { type CacheLookup, RepositoryZtocCache, type ZtocCache, type ZtocCacheKey } from '../../lambda/soci/ztoc-cache.ts';
import { gzipLayer, pushImage } from '../support/memory-images.ts';

const OPTIONS: BuildOptions = { ...DEFAULT_BUILD_OPTIONS, spanSize: 65536, minLayerSize: 0, concurrency: 1 };

describe('zTOC cache lookups and builds overlap', () => {
  test('concurrency 1: the missed layer starts building while the hit layer lookup is still in flight', async () => {
    const source = new MemoryTarget('source');
    const cache = new RepositoryZtocCache(new MemoryTarget('cache'));
    const [shared, fresh] = [await gzipLayer('shared.txt'), await gzipLayer('fresh.txt')];
    const [sharedDesc] = await pushImage(source, 'base', [shared]);
    const [, freshDesc] = await pushImage(source, 'app', [shared, fresh]);
    const first = await buildSociIndex(source, 'base', { ...OPTIONS, ztocCache: cache });
    assert.equal(first.status, 'created', first.message);

    // The shared layer's lookup answers only once the fresh layer's build has started (or after 5 s).
    let freshStarted!: () => void;
    const started = new Promise<'started'>((resolve) => (freshStarted = () => resolve('started')));
    const waits: string[] = [];
    const held: ZtocCache = {
      description: cache.description,
      lookup: async (key: ZtocCacheKey, ...rest): Promise<CacheLookup> => {
        if (key.layerDigest === sharedDesc!.digest) {
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise<string>((resolve) => (timer = setTimeout(resolve, 5000, 'timed out')));
          waits.push(await Promise.race([started, timeout]));
          clearTimeout(timer);
        }
        return cache.lookup(key, ...rest);
      },
      store: (...args) => cache.store(...args),
      place: (...args) => cache.place(...args),
    };
    const onEvent = (event: BuildEvent) => {
      if (event.type === 'layer-start' && event.layer === freshDesc!.digest) freshStarted();
    };
    const second = await buildSociIndex(source, 'app', { ...OPTIONS, ztocCache: held, onEvent });
    assert.equal(second.status, 'created', second.message);
    assert.deepEqual(waits, ['started'], 'the hit lookup was held until the fresh layer build started');
    assert.deepEqual(
      second.platforms[0]?.layers.map((l) => [l.digest, l.ztoc]),
      [
        [sharedDesc!.digest, 'reused'],
        [freshDesc!.digest, 'built'],
      ],
    );
  });
});
