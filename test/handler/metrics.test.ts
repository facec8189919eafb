import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { layerSkipCode } from '../../lambda/handler/metrics.ts';

describe('layerSkipCode', () => {
  test('reduces reasons to a few dimension values', () => {
    // The core's wording (lambda/soci/select.ts) and the zTOC engine's failures.
    assert.equal(layerSkipCode('below minimum layer size (100 < 10485760)'), 'below-minimum-size');
    assert.equal(layerSkipCode('zstd layers cannot be indexed'), 'unsupported-format');
    assert.equal(layerSkipCode('layers of media type application/vnd.oci.image.layer.nondistributable.v1.tar cannot be indexed'), 'unsupported-format');
    assert.equal(layerSkipCode('a SOCI prefetch artifact, not a layer'), 'not-a-layer');
    assert.equal(layerSkipCode('unsupported compression: application/vnd.oci.image.layer.v1.tar+encrypted'), 'unsupported-format');
    assert.equal(layerSkipCode('bad gzip header at offset 0'), 'error');
    assert.equal(layerSkipCode(undefined), 'error');
  });

  test('a layer past an engine limit has its own dimension value', () => {
    const reason = 'cannot be indexed: PAX header at offset 0 has more than 10000 records (limit paxRecordsPerEntry)';
    assert.equal(layerSkipCode(reason, 'limit-exceeded'), 'limit-exceeded');
    assert.equal(layerSkipCode('cannot be indexed: gzip CRC mismatch', 'bad-gzip'), 'unsupported-format');
  });
});
