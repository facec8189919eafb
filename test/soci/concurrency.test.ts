// `concurrency` is observed, not assumed: a Target that counts the layer streams open at once, and those
// being read at once (from their first chunk pulled to their end: a stream opened while waiting for a
// worker does not count), shows that a build reads at most `concurrency` layers at a time, and uses that
// many (not one at a time), with and without a zTOC cache (whose misses are built by their own loop).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryTarget } from '../../lambda/memory/memory-target.ts';
import { isLayer, MEDIA_TYPE_OCI_LAYER, MEDIA_TYPE_OCI_LAYER_GZIP } from '../../lambda/oci/media-types.ts';
import type { Descriptor, FetchOptions, Target } from '../../lambda/oci/target.ts';
import { buildSociIndex, DEFAULT_BUILD_OPTIONS } from '../../lambda/soci/build.ts';
import { RepositoryZtocCache } from '../../lambda/soci/ztoc-cache.ts';
import { goldenLayerInput, pushImage } from './helpers.ts';

/**
 * Wraps `inner`, counting layer streams from fetch() until their end (or abandonment), and those being
 * read: from their first chunk pulled until their end.
 */
function countingTarget(inner: Target): { target: Target; maxOpen: () => number; maxReading: () => number; streams: () => number } {
  let open = 0;
  let max = 0;
  let reading = 0;
  let maxReading = 0;
  let streams = 0;
  const fetch = async (desc: Descriptor, options?: FetchOptions): Promise<AsyncIterable<Uint8Array>> => {
    if (!isLayer(desc.mediaType)) return inner.fetch(desc, options);
    open++;
    streams++;
    max = Math.max(max, open);
    let source: AsyncIterable<Uint8Array>;
    try {
      source = await inner.fetch(desc, options);
    } catch (err) {
      open--;
      throw err;
    }
    return (async function* () {
      // A generator's body runs on the first next(): this is the first pull.
      reading++;
      maxReading = Math.max(maxReading, reading);
      try {
        yield* source;
      } finally {
        reading--;
        open--;
      }
    })();
  };
  const target = new Proxy(inner, {
    get(t, property) {
      if (property === 'fetch') return fetch;
      const value = Reflect.get(t, property, t);
      return typeof value === 'function' ? value.bind(t) : value;
    },
  });
  return { target, maxOpen: () => max, maxReading: () => maxReading, streams: () => streams };
}

/** The image in memory: what is measured is the build's reading, not a backend. */
async function fourLayerImage(): Promise<MemoryTarget> {
  const target = new MemoryTarget('concurrency');
  const manifest = await pushImage(target, [
    await goldenLayerInput('gotar-mini.tar.gzip6n.gz', MEDIA_TYPE_OCI_LAYER_GZIP),
    await goldenLayerInput('gotar-mini.tar.nodezlib6.gz', MEDIA_TYPE_OCI_LAYER_GZIP),
    await goldenLayerInput('gotar-mini.tar', MEDIA_TYPE_OCI_LAYER),
    await goldenLayerInput('tiny-gnu.tar', MEDIA_TYPE_OCI_LAYER),
  ]);
  await target.tag(manifest, 'app');
  return target;
}

describe('layers read at once', () => {
  for (const concurrency of [1, 2]) {
    test(`--concurrency ${concurrency}: at most ${concurrency} layer streams open, and ${concurrency} reached`, async () => {
      const image = await fourLayerImage();
      const counting = countingTarget(image);
      const result = await buildSociIndex(
        counting.target,
        'app',
        { ...DEFAULT_BUILD_OPTIONS, spanSize: 65536, minLayerSize: 0, concurrency },
        image,
      );
      assert.equal(result.status, 'created', result.message);
      assert.equal(counting.streams(), 4, 'each layer read once');
      assert.equal(counting.maxOpen(), concurrency);
      assert.equal(counting.maxReading(), concurrency, 'layers being read at once');
    });

    test(`--concurrency ${concurrency} with a zTOC cache that misses: ${concurrency} layer(s) read at once, no more`, async () => {
      const image = await fourLayerImage();
      const counting = countingTarget(image);
      const ztocCache = new RepositoryZtocCache(new MemoryTarget('empty cache'));
      const result = await buildSociIndex(
        counting.target,
        'app',
        { ...DEFAULT_BUILD_OPTIONS, spanSize: 65536, minLayerSize: 0, concurrency, ztocCache },
        image,
      );
      assert.equal(result.status, 'created', result.message);
      assert.equal(result.cache?.misses, 4, 'every layer missed');
      assert.equal(counting.streams(), 4, 'each layer read once');
      assert.equal(counting.maxOpen(), concurrency);
      assert.equal(counting.maxReading(), concurrency, 'layers being read at once');
    });
  }
});
