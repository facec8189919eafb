// Builds that resume: a build stopped at its deadline has already put every zTOC it finished into the
// cache, so its retry reads only the remaining layers and produces what an uninterrupted build produces.
// Against a real docker-registry behind the test proxy.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { buildSociIndex } from '../../lambda/soci/build.ts';
import { type BuildOptions, SociError } from '../../lambda/soci/types.ts';
import type { BuiltLayout } from '../support/images.ts';
import { options, ztocCacheWorld } from '../support/ztoc-cache-world.ts';

describe('zTOC cache: resume after a deadline', () => {
  const world = ztocCacheWorld();
  const { target, cache, push, layersOf, assertSameAsScratch, ztocModes, cachedLayers } = world;
  let one: BuiltLayout;
  before(() => {
    ({ one } = world);
  });

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
    await assert.rejects(
      buildSociIndex(target('resume/app'), 'v1', opts),
      (err: unknown) => err instanceof SociError && err.kind === 'transient' && /^deadline: .*pushing/.test(err.message),
    );
    await assert.rejects(target('resume/app').resolve('v1-soci'), 'nothing tagged');
    const layers = layersOf(one);
    // Which layers the stopped build finished is not fixed (a miss starts building as soon as its own
    // lookup answers, and the lookups race): the cache says which. At least one, and not all.
    const cached = await cachedLayers('cache/resume');
    const finished = layers.filter((l) => cached.has(l.digest));
    assert.ok(finished.length >= 1 && finished.length < layers.length, `the stopped build cached ${finished.length} of ${layers.length}`);
    const retry = await buildSociIndex(target('resume/app'), 'v1', { ...options, ztocCache: cache('cache/resume') });
    assert.deepEqual(
      ztocModes(retry),
      layers.map((l) => (cached.has(l.digest) ? 'reused' : 'built')),
    );
    assert.equal(
      retry.bytesRead,
      layers.filter((l) => !cached.has(l.digest)).reduce((n, l) => n + l.size, 0),
    );
    await assertSameAsScratch('resume/app', retry, one);
  });
});
