// The zTOC cache when things go wrong, against a real docker-registry behind the test proxy: entries that
// do not check out (another build tool, another span size, another layer's zTOC, not a zTOC, bytes that
// do not match their digest) are ignored and rebuilt, and a cache that refuses everything never fails the
// build. Every output is compared with a build of the same image without the cache. (Reuse itself:
// ztoc-cache.test.ts; resume after a deadline: ztoc-cache-resume.test.ts.)
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { descriptorFor, sha256Digest } from '../../lambda/oci/digest.ts';
import { marshalManifest, parseManifest } from '../../lambda/oci/go-json.ts';
import type { Descriptor } from '../../lambda/oci/target.ts';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { buildSociIndex } from '../../lambda/soci/build.ts';
import type { BuildEvent } from '../../lambda/soci/types.ts';
import { cacheTag, RepositoryZtocCache, ZTOC_CACHE_ARTIFACT_TYPE, type ZtocCacheKey } from '../../lambda/soci/ztoc-cache.ts';
import { buildZtoc } from '../../lambda/ztoc/builder.ts';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import type { BuiltLayout } from '../support/images.ts';
import type { RunningRegistry } from '../support/registry.ts';
import { options, ztocCacheWorld } from '../support/ztoc-cache-world.ts';

describe('zTOC cache faults against docker-registry', () => {
  const world = ztocCacheWorld();
  const { target, cache, push, layersOf, assertSameAsScratch, ztocModes } = world;
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let one: BuiltLayout;
  before(() => {
    ({ registry, proxy, one } = world);
  });
  /** The build's warnings, as an assertion message: a cache miss or failure then says why. */
  const warningsOf = (events: BuildEvent[]) =>
    events.flatMap((e) => (e.type === 'log' && e.level === 'warn' ? [e.message] : [])).join('\n') || '(no warnings)';

  test('entries that do not check out are ignored and rebuilt, never used', async () => {
    await push(one, 'bad/app:v1');
    await push(one, 'bad/check:v1');
    const layers = layersOf(one);
    const key = (layer: Descriptor, compression: 'gzip' | 'uncompressed' = 'gzip'): ZtocCacheKey => ({
      layerDigest: layer.digest,
      compression,
      spanSize: options.spanSize,
      buildToolId: options.buildToolId,
    });
    const ztocOf = async (
      layer: Descriptor,
      extra: { spanSize?: number; buildToolId?: string; compression?: 'gzip' | 'uncompressed' } = {},
    ) => {
      const built = await buildZtoc(
        (async function* () {
          yield one.blobs.get(layer.digest)!;
        })(),
        { spanSize: options.spanSize, buildToolId: options.buildToolId, compression: 'gzip', ...extra },
      );
      assert.ok(built.indexable);
      return built;
    };
    const bad = cache('cache/bad');
    // Layer 0: the entry's annotations claim the right key, the zTOC inside says another build tool.
    const otherTool = await ztocOf(layers[0]!, { buildToolId: 'another tool' });
    await bad.store(key(layers[0]!), otherTool.bytes, otherTool.summary);
    // Layer 1 (a plain tar): the entry's blob is not a zTOC at all.
    const right = await ztocOf(layers[1]!, { compression: 'uncompressed' });
    await bad.store(key(layers[1]!, 'uncompressed'), right.bytes, right.summary);
    const cacheTarget = target('cache/bad');
    const entry = await cacheTarget.resolve(cacheTag(key(layers[1]!, 'uncompressed')));
    const manifest = parseManifest(await cacheTarget.fetchBytes(entry));
    assert.equal(manifest.config.mediaType, ZTOC_CACHE_ARTIFACT_TYPE);
    const garbage = new TextEncoder().encode('not a zTOC');
    const garbageDesc = { mediaType: 'application/octet-stream', digest: sha256Digest(garbage), size: garbage.length };
    await cacheTarget.push(garbageDesc, garbage);
    const forgedBytes = marshalManifest({ ...manifest, layers: [garbageDesc] });
    const forged = descriptorFor(entry.mediaType, forgedBytes);
    await cacheTarget.push(forged, forgedBytes);
    await cacheTarget.tag(forged, cacheTag(key(layers[1]!, 'uncompressed')));
    // Layer 2: the zTOC of this layer at another span size.
    const otherSpan = await ztocOf(layers[2]!, { spanSize: 32768 });
    await bad.store(key(layers[2]!), otherSpan.bytes, otherSpan.summary);
    // Layer 3: the zTOC of another layer with the same settings.
    const otherLayer = await ztocOf(layers[2]!);
    await bad.store(key(layers[3]!), otherLayer.bytes, otherLayer.summary);

    const events: BuildEvent[] = [];
    const result = await buildSociIndex(target('bad/app'), 'v1', { ...options, ztocCache: bad, onEvent: (e) => events.push(e) });
    assert.deepEqual(ztocModes(result), ['built', 'built', 'built', 'built']);
    assert.equal(result.cache?.invalid, 4);
    assert.equal(result.cache?.failures, 0);
    const warnings = events.flatMap((e) => (e.type === 'log' && e.level === 'warn' ? [e.message] : []));
    assert.equal(warnings.length, 4, warnings.join('\n'));
    assert.ok(
      warnings.some((w) => /build tool id is "another tool"/.test(w)),
      warnings.join('\n'),
    );
    assert.ok(
      warnings.some((w) => /compressed size is \d+, expected \d+/.test(w)),
      warnings.join('\n'),
    );
    assert.ok(
      warnings.some((w) => /span size is 32768, expected 65536/.test(w)),
      warnings.join('\n'),
    );
    assert.ok(
      warnings.some((w) => /malformed|bad-ztoc|zTOC/.test(w)),
      warnings.join('\n'),
    );
    assert.equal(
      result.bytesRead,
      layers.reduce((n, l) => n + l.size, 0),
    );
    await assertSameAsScratch('bad/app', result, one);

    // The rebuilt zTOCs replaced the bad entries: the next image reuses all four.
    const next = await buildSociIndex(target('bad/check'), 'v1', { ...options, ztocCache: cache('cache/bad') });
    assert.deepEqual(ztocModes(next), ['reused', 'reused', 'reused', 'reused']);
    await assertSameAsScratch('bad/check', next, one);
  });

  test('a cached zTOC whose bytes do not match its digest is a miss', async () => {
    await push(one, 'corrupt/a:v1');
    await push(one, 'corrupt/b:v1');
    const firstEvents: BuildEvent[] = [];
    const first = await buildSociIndex(target('corrupt/a'), 'v1', {
      ...options,
      ztocCache: cache('cache/corrupt'),
      onEvent: (e) => firstEvents.push(e),
    });
    assert.equal(first.cache?.stored, 4, warningsOf(firstEvents));
    const victim = first.platforms[0]!.layers[0]!;
    // A second proxy serves the first layer's cached zTOC with every byte zeroed (same length).
    const corrupting = await startFaultProxy({
      upstream: registry.host,
      gate: (req, res) => {
        if (req.method !== 'GET' || req.url !== `/v2/cache/corrupt/blobs/${victim.ztocDigest}`) return false;
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(victim.ztocSize) });
        res.end(Buffer.alloc(victim.ztocSize!));
        return true;
      },
    });
    try {
      const corrupted = new RepositoryZtocCache(
        new RegistryTarget({ registry: corrupting.host, repository: 'cache/corrupt', retry: { attempts: 1 } }),
      );
      const events: BuildEvent[] = [];
      const result = await buildSociIndex(target('corrupt/b'), 'v1', { ...options, ztocCache: corrupted, onEvent: (e) => events.push(e) });
      assert.deepEqual(ztocModes(result), ['built', 'reused', 'reused', 'reused'], warningsOf(events));
      assert.equal(result.cache?.invalid, 1);
      assert.equal(result.bytesRead, victim.size);
      await assertSameAsScratch('corrupt/b', result, one);
    } finally {
      await corrupting.stop();
    }
  });

  test('a transient failure reading an entry is a cache failure, not an invalid entry', async () => {
    await push(one, 'flaky/a:v1');
    await push(one, 'flaky/b:v1');
    await buildSociIndex(target('flaky/a'), 'v1', { ...options, ztocCache: cache('cache/flaky') });
    // One manifest GET of the cache answers 503 and the cache target does not retry: the registry said nothing
    // about the entry, so it is a cache failure (logged, counted), not an invalid entry.
    proxy.failNext(503, 1, { method: 'GET', path: /^\/v2\/cache\/flaky\/manifests\// });
    const events: BuildEvent[] = [];
    const flaky = new RepositoryZtocCache(new RegistryTarget({ registry: proxy.host, repository: 'cache/flaky', retry: { attempts: 1 } }));
    const result = await buildSociIndex(target('flaky/b'), 'v1', { ...options, ztocCache: flaky, onEvent: (e) => events.push(e) });
    assert.deepEqual([result.cache?.failures, result.cache?.invalid, result.cache?.reused], [1, 0, 3], warningsOf(events));
    assert.match(warningsOf(events), /the lookup for layer sha256:[a-f0-9]{64} failed, going on without it: .*503/);
    await assertSameAsScratch('flaky/b', result, one);
  });

  test('a cache that fails never fails the build', async () => {
    await push(one, 'denied/app:v1');
    proxy.failNext(403, 1000, { path: /^\/v2\/cache\/denied\// });
    const result = await buildSociIndex(target('denied/app'), 'v1', { ...options, ztocCache: cache('cache/denied') });
    assert.deepEqual(ztocModes(result), ['built', 'built', 'built', 'built']);
    assert.equal(result.cache?.stored, 0);
    assert.equal(result.cache?.failures, 8, 'four lookups and four writes');
    await assertSameAsScratch('denied/app', result, one);
  });
});
