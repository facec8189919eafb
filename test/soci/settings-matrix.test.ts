// "Already indexed" holds only for the same settings: for each setting that changes the output bytes, a
// build with settings A followed by a rerun with settings B gives exactly what a fresh build with B gives
// (same digests, same tags), and a rerun with the same settings (or settings that change no byte) is
// recognised without reading a layer. Every build starts from its own copy of one small two-platform image
// (small golden layers, so the ~60 builds stay cheap).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MEDIA_TYPE_OCI_LAYER, MEDIA_TYPE_OCI_LAYER_GZIP } from '../../lambda/oci/media-types.ts';
import { buildSociIndex, DEFAULT_BUILD_OPTIONS } from '../../lambda/soci/build.ts';
import type { BuildOptions, BuildResult } from '../../lambda/soci/types.ts';
import { layoutCopier } from '../support/layouts.ts';
import { goldenLayerInput, newLayout, pushImage, pushIndex } from './helpers.ts';

const copy = await layoutCopier('matrix');

// linux/amd64 and linux/arm64/v8, each: a gzip layer of 315 kB (with xattrs), a 125-byte gzip layer, a
// 786 kB tar (with xattrs) and a 10 kB tar without xattrs (what the xattr optimisation marks).
const template = await copy(undefined, async (dir) => {
  const layout = await newLayout(dir);
  const shared = [
    await goldenLayerInput('tiny-gnu.tar.gz', MEDIA_TYPE_OCI_LAYER_GZIP),
    await goldenLayerInput('gotar-mini.tar', MEDIA_TYPE_OCI_LAYER),
    await goldenLayerInput('tiny-gnu.tar', MEDIA_TYPE_OCI_LAYER),
  ];
  const amd64 = await pushImage(layout, [await goldenLayerInput('gotar-mini.tar.gzip6n.gz', MEDIA_TYPE_OCI_LAYER_GZIP), ...shared]);
  const arm64 = await pushImage(layout, [await goldenLayerInput('gotar-mini.tar.nodezlib6.gz', MEDIA_TYPE_OCI_LAYER_GZIP), ...shared], {
    os: 'linux',
    architecture: 'arm64',
    variant: 'v8',
  });
  const index = await pushIndex(layout, [
    { ...amd64, platform: { os: 'linux', architecture: 'amd64' } },
    { ...arm64, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
  ]);
  await layout.tag(index, 'latest');
});

const BASE: BuildOptions = {
  ...DEFAULT_BUILD_OPTIONS,
  spanSize: 65536,
  minLayerSize: 1000,
  buildToolId: 'AWS SOCI CLI v0.2',
  concurrency: 1,
};
const XATTR: Partial<BuildOptions> = { optimizations: ['xattr'] };
const PREFETCH: Partial<BuildOptions> = { prefetchFiles: ['etc/hostname'] };
const IN_PLACE: Partial<BuildOptions> = { tagPolicy: { mode: 'in-place' } };

/** What a build produced, without timings and byte counts. */
function outcome(result: BuildResult) {
  return {
    status: result.status,
    indexVersion: result.indexVersion,
    output: result.output,
    platforms: result.platforms.map((p) => ({
      platform: p.platform,
      manifestDigest: p.manifestDigest,
      indexDigest: p.indexDigest,
      convertedManifestDigest: p.convertedManifestDigest,
      layers: p.layers.map((l) => [l.digest, l.status, l.ztocDigest]),
    })),
  };
}

async function buildOn(dir: string, options: Partial<BuildOptions>): Promise<BuildResult> {
  const { layout } = await copy(dir);
  return buildSociIndex(layout, 'latest', { ...BASE, ...options });
}

/** A fresh build with `options`, once per distinct options: its result and the layout it left. */
const builds = new Map<string, Promise<{ result: BuildResult; dir: string }>>();
function freshBuild(options: Partial<BuildOptions>): Promise<{ result: BuildResult; dir: string }> {
  const key = JSON.stringify(options);
  if (!builds.has(key)) {
    builds.set(
      key,
      (async () => {
        const { dir, layout } = await copy(template.dir);
        return { result: await buildSociIndex(layout, 'latest', { ...BASE, ...options }), dir };
      })(),
    );
  }
  return builds.get(key)!;
}

/** Builds with `a` (shared between cases), then reruns with `b` on a private copy of what `a` left. */
async function rerun(a: Partial<BuildOptions>, b: Partial<BuildOptions>): Promise<[BuildResult, BuildResult]> {
  const first = await freshBuild(a);
  return [first.result, await buildOn(first.dir, b)];
}

const CHANGED: { setting: string; a: Partial<BuildOptions>; b: Partial<BuildOptions> }[] = [
  { setting: 'span size', a: {}, b: { spanSize: 1 << 20 } },
  { setting: 'min layer size lowered (one more layer)', a: {}, b: { minLayerSize: 0 } },
  { setting: 'min layer size raised (one layer fewer)', a: {}, b: { minLayerSize: 500_000 } },
  { setting: 'build tool id', a: {}, b: { buildToolId: 'another tool' } },
  { setting: 'index version v2 -> v1', a: {}, b: { indexVersion: 'v1' } },
  { setting: 'index version v1 -> v2', a: { indexVersion: 'v1' }, b: {} },
  { setting: 'platforms: one of two', a: {}, b: { platforms: ['linux/amd64'] } },
  {
    setting: 'platforms: named as asked (linux/arm64 for linux/arm64/v8)',
    a: { platforms: ['linux/arm64/v8'] },
    b: { platforms: ['linux/arm64'] },
  },
  { setting: 'xattr optimization turned on', a: {}, b: XATTR },
  { setting: 'xattr optimization turned off', a: XATTR, b: {} },
  { setting: 'xattr optimization turned on (v1)', a: { indexVersion: 'v1' }, b: { indexVersion: 'v1', ...XATTR } },
  { setting: 'prefetch paths added', a: {}, b: PREFETCH },
  { setting: 'prefetch paths added (v1)', a: { indexVersion: 'v1' }, b: { indexVersion: 'v1', ...PREFETCH } },
  { setting: 'prefetch paths changed', a: PREFETCH, b: { prefetchFiles: ['usr/lib/big-text.txt', 'hello.txt'] } },
  { setting: 'prefetch paths removed', a: PREFETCH, b: {} },
  { setting: 'tag policy: explicit tags', a: {}, b: { tagPolicy: { mode: 'tags', tags: ['other'] } } },
  { setting: 'tag policy: another suffix', a: {}, b: { tagPolicy: { mode: 'suffix', suffix: '-lazy' } } },
  {
    setting: 'tag policy: one more explicit tag',
    a: { tagPolicy: { mode: 'tags', tags: ['soci'] } },
    b: { tagPolicy: { mode: 'tags', tags: ['soci', 'other'] } },
  },
  { setting: 'tag policy: in place', a: {}, b: IN_PLACE },
];

const SAME: { settings: string; a: Partial<BuildOptions>; b: Partial<BuildOptions> }[] = [
  { settings: 'defaults', a: {}, b: {} },
  { settings: 'xattr and prefetch (v2)', a: { ...XATTR, ...PREFETCH }, b: { ...XATTR, ...PREFETCH } },
  {
    settings: 'xattr and prefetch (v1)',
    a: { indexVersion: 'v1', ...XATTR, ...PREFETCH },
    b: { indexVersion: 'v1', ...XATTR, ...PREFETCH },
  },
  { settings: 'prefetch paths spelled differently (cleaned the same)', a: PREFETCH, b: { prefetchFiles: ['/etc//./hostname'] } },
  { settings: 'a platform named as asked', a: { platforms: ['linux/arm64'] }, b: { platforms: ['linux/arm64'] } },
  { settings: 'concurrency (changes no byte)', a: {}, b: { concurrency: 2 } },
];

describe('settings matrix: a rerun with other settings gives what a fresh build with them gives', () => {
  for (const { setting, a, b } of CHANGED) {
    test(setting, async () => {
      const [first, again] = await rerun(a, b);
      const { result: expected } = await freshBuild(b);
      assert.equal(first.status, 'created', first.message);
      assert.equal(expected.status, 'created', expected.message);
      // The setting does change the output, so a rerun that kept A's output would be caught below.
      assert.notDeepEqual(outcome(first), outcome(expected));
      assert.deepEqual(outcome(again), outcome(expected), again.message);
    });
  }
});

describe('settings matrix: a rerun with the same settings is already indexed', () => {
  for (const { settings, a, b } of SAME) {
    test(settings, async () => {
      const [first, again] = await rerun(a, b);
      assert.equal(first.status, 'created', first.message);
      assert.equal(again.status, 'already-indexed', again.message);
      assert.equal(again.bytesRead, 0, 'no layer is read');
      // (v1 results list the layout ref names only when they are written: compare what was found.)
      assert.deepEqual([again.output?.digest, again.output?.mediaType], [first.output?.digest, first.output?.mediaType]);
      assert.deepEqual(
        again.platforms.map((p) => [p.platform, p.indexDigest, p.convertedManifestDigest]),
        first.platforms.map((p) => [p.platform, p.indexDigest, p.convertedManifestDigest]),
      );
    });
  }
});

describe('settings matrix: in place', () => {
  test('a rerun in place finds the source tag already naming the SOCI-enabled index', async () => {
    const [first, again] = await rerun(IN_PLACE, IN_PLACE);
    assert.equal(first.status, 'created', first.message);
    assert.deepEqual(first.output?.tags, ['latest']);
    assert.equal(again.status, 'already-indexed', again.message);
    assert.equal(again.bytesRead, 0, 'no layer is read');
    assert.equal(again.output?.digest, first.output?.digest);
  });
});
