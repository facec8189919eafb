// What a build does with its zTOC cache around the deadline and in a dry run (unit tier: MemoryTargets
// and a real RepositoryZtocCache). A zTOC goes into the cache before the deadline is checked, so a build
// stopped there leaves it for the retry; a dry run reuses hits but writes nothing, to the cache or the
// output. (Against docker-registry: test/soci/ztoc-cache*.test.ts.)
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryTarget } from '../../lambda/memory/memory-target.ts';
import type { Descriptor } from '../../lambda/oci/target.ts';
import { buildSociIndex, DEFAULT_BUILD_OPTIONS } from '../../lambda/soci/build.ts';
import { PUSH_MARGIN_MS } from '../../lambda/soci/tagging.ts';
import { type BuildOptions, SociError } from '../../lambda/soci/types.ts';
import { cacheTag, RepositoryZtocCache } from '../../lambda/soci/ztoc-cache.ts';
import { gzipLayer, pushImage } from '../support/memory-images.ts';

const OPTIONS: BuildOptions = { ...DEFAULT_BUILD_OPTIONS, spanSize: 65536, minLayerSize: 0, concurrency: 1 };
const key = (layer: Descriptor) => ({
  layerDigest: layer.digest,
  compression: 'gzip',
  spanSize: OPTIONS.spanSize,
  buildToolId: OPTIONS.buildToolId,
});

describe('zTOC cache in a build', () => {
  test('a zTOC finished past the deadline is stored before the build stops, and the retry reads no layer', async () => {
    const source = new MemoryTarget('source');
    const cacheTarget = new MemoryTarget('cache');
    const [layer] = await pushImage(source, 'app', [await gzipLayer('app.txt')]);
    // The deadline leaves time to start reading; the layer's read ends only once pushing is too late.
    const deadline = Date.now() + PUSH_MARGIN_MS + 3000;
    const fetch = source.fetch.bind(source);
    source.fetch = async (desc, options) => {
      if (desc.digest === layer!.digest) {
        while (Date.now() < deadline - PUSH_MARGIN_MS + 50) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return fetch(desc, options);
    };
    await assert.rejects(
      buildSociIndex(source, 'app', { ...OPTIONS, deadline, ztocCache: new RepositoryZtocCache(cacheTarget) }),
      (err: unknown) => err instanceof SociError && err.kind === 'transient' && /^deadline: .*pushing/.test(err.message),
    );
    assert.deepEqual(cacheTarget.listTags(), [cacheTag(key(layer!))], 'the zTOC is in the cache');

    source.fetch = fetch;
    const retry = await buildSociIndex(source, 'app', { ...OPTIONS, ztocCache: new RepositoryZtocCache(cacheTarget) });
    assert.equal(retry.status, 'created', retry.message);
    assert.deepEqual(
      retry.platforms[0]!.layers.map((l) => l.ztoc),
      ['reused'],
    );
    assert.equal(retry.bytesRead, 0);
  });

  test('a dry run reuses hits and builds misses, but writes nothing to the cache or the output', async () => {
    const source = new MemoryTarget('source');
    const cacheTarget = new MemoryTarget('cache');
    const [shared, fresh] = [await gzipLayer('shared.txt'), await gzipLayer('fresh.txt')];
    await pushImage(source, 'base', [shared]);
    const [sharedDesc, freshDesc] = await pushImage(source, 'app', [shared, fresh]);
    const first = await buildSociIndex(source, 'base', { ...OPTIONS, ztocCache: new RepositoryZtocCache(cacheTarget) });
    assert.equal(first.status, 'created', first.message);

    const cacheTags = cacheTarget.listTags();
    const cacheBlobs = [...cacheTarget.blobs.keys()];
    const sourceBlobs = [...source.blobs.keys()];
    const output = new MemoryTarget('output');
    const dry = await buildSociIndex(source, 'app', { ...OPTIONS, dryRun: true, ztocCache: new RepositoryZtocCache(cacheTarget) }, output);
    assert.equal(dry.status, 'created', dry.message);
    assert.deepEqual(
      dry.platforms[0]!.layers.map((l) => [l.digest, l.ztoc]),
      [
        [sharedDesc!.digest, 'reused'],
        [freshDesc!.digest, 'built'],
      ],
    );
    assert.equal(dry.cache?.stored, 0);
    assert.deepEqual(cacheTarget.listTags(), cacheTags, 'no entry written');
    assert.deepEqual([...cacheTarget.blobs.keys()], cacheBlobs, 'no blob written to the cache');
    assert.deepEqual([...output.blobs.keys()], [], 'nothing placed in the output');
    assert.deepEqual([...source.blobs.keys()], sourceBlobs, 'nothing written to the source');
  });
});
