// Byte compatibility with upstream soci on the golden image layout: the v1 and v2 SOCI indexes, the
// converted image manifest and the converted OCI index of settings a and b have exactly the golden bytes,
// and every zTOC and prefetch blob they list is in the layout with the golden bytes.
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { OciLayoutTarget } from '../../lambda/layout/oci-layout.ts';
import { parseIndex } from '../../lambda/oci/go-json.ts';
import { ANNOTATION_REF_NAME } from '../../lambda/oci/media-types.ts';
import { buildSociIndex, DEFAULT_BUILD_OPTIONS, layoutV1RefName } from '../../lambda/soci/build.ts';
import type { BuildEvent, BuildOptions } from '../../lambda/soci/types.ts';
import { goldenPath, sha256Hex } from '../support/golden.ts';

const SOURCE_MANIFEST = 'sha256:fbf36bc11809c654edf97c6f26cf31969fa65c8dc0402f4f4bb7bdf1a7249964';

const SETTINGS: { dir: string; options: Partial<BuildOptions> }[] = [
  { dir: 'a-span4m-min1MiB', options: { spanSize: 4194304, minLayerSize: 1048576 } },
  {
    dir: 'b-span64k-min0-xattr-prefetch',
    options: {
      spanSize: 65536,
      minLayerSize: 0,
      optimizations: ['xattr'],
      prefetchFiles: ['app/lib/file011.dat', '/usr/lib/big-text.txt', 'etc/hostname', 'does/not/exist', 'app/data/big-random.bin'],
    },
  },
];

const scratch = await mkdtemp(join(tmpdir(), 'soci-golden-'));
after(() => rm(scratch, { recursive: true, force: true }));

let copies = 0;
async function layoutCopy(): Promise<{ dir: string; layout: OciLayoutTarget }> {
  const dir = join(scratch, `layout-${copies++}`);
  await cp(goldenPath('image-layout'), dir, { recursive: true });
  return { dir, layout: await OciLayoutTarget.open(dir) };
}

async function goldenDigest(dir: string, file: string): Promise<string> {
  return `sha256:${sha256Hex(await readFile(goldenPath('index', dir, file)))}`;
}

/** Every golden zTOC/prefetch blob of `dir` is in the layout with identical bytes. */
async function assertGoldenBlobs(layoutDir: string, dir: string): Promise<number> {
  const names = (await readdir(goldenPath('index', dir))).filter((n) => n.startsWith('ztoc-') || n.startsWith('prefetch-'));
  for (const name of names) {
    const hex = /^(?:ztoc|prefetch)-([0-9a-f]{64})/.exec(name)![1]!;
    const stored = await readFile(join(layoutDir, 'blobs', 'sha256', hex));
    assert.equal(sha256Hex(stored), hex, name);
    assert.ok(stored.equals(await readFile(goldenPath('index', dir, name))), name);
  }
  return names.length;
}

for (const { dir, options } of SETTINGS) {
  describe(`golden index ${dir}`, () => {
    const base: BuildOptions = { ...DEFAULT_BUILD_OPTIONS, ...options, buildToolId: 'AWS SOCI CLI v0.2', concurrency: 2 };

    test('v2: SOCI index, converted manifest and converted OCI index have the golden digests', async () => {
      const { dir: layoutDir, layout } = await layoutCopy();
      const events: BuildEvent[] = [];
      const result = await buildSociIndex(layout, 'golden', { ...base, onEvent: (e) => events.push(e) });
      assert.equal(result.status, 'created', result.message);
      const [platform] = result.platforms;
      assert.equal(result.platforms.length, 1);
      assert.equal(platform!.platform, 'linux/amd64');
      assert.equal(platform!.manifestDigest, SOURCE_MANIFEST);
      assert.equal(platform!.indexDigest, await goldenDigest(dir, 'soci-index-v2.json'));
      assert.equal(platform!.convertedManifestDigest, await goldenDigest(dir, 'converted-image-manifest.json'));
      assert.equal(result.output?.digest, await goldenDigest(dir, 'converted-oci-index.json'));
      assert.deepEqual(result.output?.tags, ['golden-soci']);
      // The manifests themselves are in the layout, byte for byte.
      for (const file of ['soci-index-v2.json', 'converted-image-manifest.json', 'converted-oci-index.json']) {
        const digest = await goldenDigest(dir, file);
        assert.ok(
          (await readFile(join(layoutDir, 'blobs', 'sha256', digest.slice(7)))).equals(await readFile(goldenPath('index', dir, file))),
          file,
        );
      }
      assert.ok((await assertGoldenBlobs(layoutDir, dir)) >= 3);
      // The output is tagged next to the untouched source.
      const entries = parseIndex(await readFile(join(layoutDir, 'index.json'))).manifests ?? [];
      assert.deepEqual(
        entries.map((e) => [e.annotations?.[ANNOTATION_REF_NAME], e.digest]),
        [
          ['golden', SOURCE_MANIFEST],
          ['golden-soci', result.output?.digest],
        ],
      );
      // The zstd layer is skipped with its reason; the events report every layer once.
      const done = events.filter((e) => e.type === 'layer-done');
      assert.equal(done.length, 5);
      assert.equal(platform!.layers[4]!.reason, 'zstd layers cannot be indexed');
      assert.equal(platform!.layers.filter((l) => l.status === 'indexed').length, dir.startsWith('a') ? 3 : 4);
    });

    test('v1: the SOCI index with subject has the golden digest and is found as a referrer', async () => {
      const { dir: layoutDir, layout } = await layoutCopy();
      const result = await buildSociIndex(layout, 'golden', { ...base, indexVersion: 'v1' });
      assert.equal(result.status, 'created', result.message);
      const expected = await goldenDigest(dir, 'soci-index-v1.json');
      assert.equal(result.platforms[0]!.indexDigest, expected);
      assert.equal(result.platforms[0]!.convertedManifestDigest, undefined);
      assert.equal(result.output?.digest, expected);
      assert.deepEqual(result.output?.tags, [layoutV1RefName(SOURCE_MANIFEST)]);
      assert.ok(
        (await readFile(join(layoutDir, 'blobs', 'sha256', expected.slice(7)))).equals(
          await readFile(goldenPath('index', dir, 'soci-index-v1.json')),
        ),
      );
      await assertGoldenBlobs(layoutDir, dir);
      const referrers = await layout.referrers(
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: SOURCE_MANIFEST, size: 1414 },
        'application/vnd.amazon.soci.index.v1+json',
      );
      assert.deepEqual(
        referrers.map((r) => r.digest),
        [expected],
      );

      // A second run finds it through the referrers and writes nothing.
      const again = await buildSociIndex(layout, 'golden', { ...base, indexVersion: 'v1' });
      assert.equal(again.status, 'already-indexed');
      assert.equal(again.output?.digest, expected);
      assert.equal(again.bytesRead, 0);
    });
  });
}
