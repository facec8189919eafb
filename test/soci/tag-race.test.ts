// The core's last look at the source tag before tagging, on OCI layouts: while the build reads the layer of
// D1 (tagged `v1`), a second writer of the same layout (as another CLI would) retags `v1` to D2 or removes
// it. The build then tags nothing and reports `superseded`, in every v2 tag mode; a v1 index, which names
// its image by digest, is still created.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { OciLayoutTarget } from '../../lambda/layout/oci-layout.ts';
import { MEDIA_TYPE_OCI_LAYER_GZIP } from '../../lambda/oci/media-types.ts';
import type { Descriptor, FetchOptions, Target } from '../../lambda/oci/target.ts';
import { buildSociIndex, DEFAULT_BUILD_OPTIONS } from '../../lambda/soci/build.ts';
import type { BuildOptions, TagPolicy } from '../../lambda/soci/types.ts';
import { goldenLayerInput, newLayout, pushImage } from './helpers.ts';

const scratch = await mkdtemp(join(tmpdir(), 'soci-tag-race-'));
after(() => rm(scratch, { recursive: true, force: true }));
let dirs = 0;

const options: BuildOptions = { ...DEFAULT_BUILD_OPTIONS, spanSize: 65536, minLayerSize: 1000, concurrency: 1 };

/** The layout as the build sees it, except that the first read of `layer` waits for `meanwhile` to finish. */
function whileReading(layout: OciLayoutTarget, layer: string, meanwhile: () => Promise<void>): Target {
  let done: Promise<void> | undefined;
  return {
    description: layout.description,
    referrersNeedTags: layout.referrersNeedTags,
    resolve: (reference) => layout.resolve(reference),
    fetch: async (desc: Descriptor, o?: FetchOptions) => {
      if (desc.digest === layer) {
        done ??= meanwhile();
        await done;
      }
      return layout.fetch(desc, o);
    },
    fetchBytes: (desc, o) => layout.fetchBytes(desc, o),
    exists: (desc) => layout.exists(desc),
    push: (desc, content, o) => layout.push(desc, content, o),
    tag: (desc, tag) => layout.tag(desc, tag),
    referrers: (subject, artifactType) => layout.referrers(subject, artifactType),
  };
}

/** A layout with D1 tagged `v1` and D2 present but untagged. */
async function twoImages(): Promise<{ dir: string; layout: OciLayoutTarget; d1: Descriptor; d2: Descriptor; d1Layer: string }> {
  const dir = join(scratch, `l${dirs++}`);
  const layout = await newLayout(dir);
  const d1 = await pushImage(layout, [await goldenLayerInput('gotar-mini.tar.gzip6n.gz', MEDIA_TYPE_OCI_LAYER_GZIP)]);
  const d2 = await pushImage(layout, [await goldenLayerInput('gotar-mini.tar.gzip6n.gz', MEDIA_TYPE_OCI_LAYER_GZIP)], {
    os: 'linux',
    architecture: 'arm64',
  });
  await layout.tag(d1, 'v1');
  const manifest = JSON.parse(Buffer.from(await layout.fetchBytes(d1)).toString('utf8'));
  return { dir, layout, d1, d2, d1Layer: manifest.layers[0].digest };
}

/** Ref name -> digest, as a fresh reader of index.json sees them. */
async function refs(dir: string): Promise<Map<string, string>> {
  const fresh = await OciLayoutTarget.open(dir);
  return new Map((await fresh.listManifests()).map((m) => [m.annotations?.['org.opencontainers.image.ref.name'] ?? '', m.digest]));
}

describe('the source tag moves while the core builds', () => {
  const policies: [string, TagPolicy, string][] = [
    ['suffix', { mode: 'suffix', suffix: '-soci' }, 'v1-soci'],
    ['explicit tags', { mode: 'tags', tags: ['deploy'] }, 'deploy'],
    ['in place', { mode: 'in-place' }, 'v1'],
  ];
  for (const [name, tagPolicy, outputTag] of policies) {
    test(`${name}: v1 retagged to another image by a second writer → superseded, ${outputTag} untouched`, async () => {
      const { dir, layout, d1, d2, d1Layer } = await twoImages();
      // A second process working on the same layout moves v1 while this build reads D1's layer.
      const source = whileReading(layout, d1Layer, async () => (await OciLayoutTarget.open(dir)).tag(d2, 'v1'));
      const result = await buildSociIndex(source, 'v1', { ...options, tagPolicy });
      assert.equal(result.status, 'superseded', result.message);
      assert.equal(result.source.digest, d1.digest);
      assert.match(result.message, new RegExp(`source tag v1 now names ${d2.digest}`));
      assert.equal(result.output, undefined);
      const after = await refs(dir);
      assert.equal(after.get('v1'), d2.digest, 'the newer image keeps v1');
      if (outputTag !== 'v1') assert.equal(after.has(outputTag), false, `${outputTag} was not written`);
    });
  }

  test('a tag deleted during the build is superseded too, naming that it is gone', async () => {
    const { dir, layout, d1Layer } = await twoImages();
    const source = whileReading(layout, d1Layer, async () => {
      const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
      index.manifests = [];
      await writeFile(join(dir, 'index.json'), JSON.stringify(index));
    });
    const result = await buildSociIndex(source, 'v1', options);
    assert.equal(result.status, 'superseded');
    assert.match(
      result.message,
      /^superseded: source tag v1 no longer exists \(it named sha256:[0-9a-f]{64} when the build started\); nothing was tagged$/,
    );
    assert.equal((await refs(dir)).has('v1-soci'), false);
  });

  test('v1 indexes name their image by digest: a moved tag does not stop them', async () => {
    const { dir, layout, d1, d2, d1Layer } = await twoImages();
    const source = whileReading(layout, d1Layer, async () => (await OciLayoutTarget.open(dir)).tag(d2, 'v1'));
    const result = await buildSociIndex(source, 'v1', { ...options, indexVersion: 'v1' });
    assert.equal(result.status, 'created', result.message);
    assert.equal(result.source.digest, d1.digest);
  });

  test('no race: the same build tags as usual (the check passes when the tag stayed)', async () => {
    const { dir, layout, d1, d1Layer } = await twoImages();
    const source = whileReading(layout, d1Layer, async () => {});
    const result = await buildSociIndex(source, 'v1', options);
    assert.equal(result.status, 'created', result.message);
    const after = await refs(dir);
    assert.equal(after.get('v1'), d1.digest);
    assert.equal(after.get('v1-soci'), result.output?.digest);
  });
});
