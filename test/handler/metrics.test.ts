import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMetrics, InvocationMetrics } from '../../lambda/handler/metrics.ts';
import type { BuildResult, LayerResult } from '../../lambda/soci/types.ts';
import { capture, enablePowertoolsCapture, metricValues } from './helpers.ts';

enablePowertoolsCapture();

const skipped = (reason: string, skipCode: LayerResult['skipCode'], code?: string): LayerResult => ({
  digest: `sha256:${'0'.repeat(64)}`,
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  size: 1,
  status: 'skipped',
  reason,
  ...(skipCode && { skipCode }),
  ...(code && { code }),
});

describe('LayersSkipped', () => {
  test('the reason dimension is the layer skip code, whatever the reason text says', async () => {
    const result: BuildResult = {
      status: 'created',
      message: 'x',
      source: { reference: 'r', digest: `sha256:${'1'.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json' },
      indexVersion: 'v2',
      platforms: [
        {
          platform: 'linux/amd64',
          manifestDigest: `sha256:${'1'.repeat(64)}`,
          layers: [
            skipped('below minimum layer size (100 < 10485760)', 'below-minimum-size'),
            skipped('a layer well below any minimum', 'below-minimum-size'),
            // Wording that the earlier regex mapped to `unsupported-format`: the code decides now.
            skipped('cannot be indexed: gzip CRC mismatch', 'cannot-be-indexed', 'bad-gzip'),
            skipped('cannot be indexed: PAX header has more than 10000 records', 'limit-exceeded', 'limit-exceeded'),
            skipped('zstd layers cannot be indexed', 'unsupported-format'),
            skipped('a SOCI prefetch artifact, not a layer', 'not-a-layer'),
          ],
        },
      ],
      bytesRead: 0,
      ztocBytes: 0,
      durationMs: 1,
      dryRun: false,
    };
    const run = await capture(async () => {
      const metrics = new InvocationMetrics(createMetrics({ POWERTOOLS_METRICS_NAMESPACE: 'SociTest' }));
      metrics.build(result);
      metrics.flush();
    });
    const layersSkipped = metricValues(run.emf)
      .filter((m) => m.name === 'LayersSkipped')
      .map((m) => [m.reason, m.value])
      .sort();
    assert.deepEqual(layersSkipped, [
      ['below-minimum-size', 2],
      ['cannot-be-indexed', 1],
      ['limit-exceeded', 1],
      ['not-a-layer', 1],
      ['unsupported-format', 1],
    ]);
  });
});

describe('zTOC cache metrics', () => {
  const result = (cache?: BuildResult['cache']): BuildResult => ({
    status: 'created',
    message: 'x',
    source: { reference: 'r', digest: `sha256:${'1'.repeat(64)}`, mediaType: 'application/vnd.oci.image.manifest.v1+json' },
    indexVersion: 'v2',
    platforms: [],
    bytesRead: 1000,
    ztocBytes: 10,
    durationMs: 1,
    dryRun: false,
    ...(cache && { cache }),
  });
  const emitted = async (built: BuildResult) => {
    const run = await capture(async () => {
      const metrics = new InvocationMetrics(createMetrics({ POWERTOOLS_METRICS_NAMESPACE: 'SociTest' }));
      metrics.build(built);
      metrics.flush();
    });
    return Object.fromEntries(metricValues(run.emf).map((m) => [m.name, m.value]));
  };

  test('LayersReused, BytesSaved and ZtocCacheFailures are the cache counts; BytesRead stays the layer bytes read', async () => {
    const cache = { location: 'c', reused: 3, bytesSaved: 123_456, misses: 2, invalid: 1, stored: 2, failures: 4 };
    const values = await emitted(result(cache));
    assert.deepEqual([values.LayersReused, values.BytesSaved, values.ZtocCacheFailures, values.BytesRead], [3, 123_456, 4, 1000]);
  });

  test('without a cache configured, none of the cache metrics is written', async () => {
    const values = await emitted(result());
    assert.deepEqual(
      ['LayersReused', 'BytesSaved', 'ZtocCacheFailures'].filter((name) => name in values),
      [],
    );
    assert.equal(values.BytesRead, 1000);
  });
});
