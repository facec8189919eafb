import assert from 'node:assert/strict';
import { createReadStream, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { decodeGzipCheckpoints, encodeGzipCheckpoints, parseZtoc } from '../../lambda/ztoc/codec.ts';
import type { Ztoc } from '../../lambda/ztoc/types.ts';
import { WINDOW_SIZE } from '../../lambda/ztoc/types.ts';
import type { VerifyReport } from '../../lambda/ztoc/verify/index.ts';
import { verifyZtoc } from '../../lambda/ztoc/verify/index.ts';
import { chunked } from '../support/bytes.ts';
import { goldenFiles, goldenLayer, goldenPath, sha256Hex } from '../support/golden.ts';

const utf8 = new TextDecoder();

function readZtoc(name: string): { bytes: Buffer; ztoc: Ztoc } {
  const bytes = readFileSync(goldenPath('ztoc', name));
  return { bytes, ztoc: parseZtoc(bytes) };
}

/** Re-opens a file on every call, in chunks of `chunkSize` bytes. */
function fileSource(path: string, chunkSize = 64 * 1024): () => AsyncIterable<Uint8Array> {
  return () => createReadStream(path, { highWaterMark: chunkSize });
}

function bytesSource(bytes: Uint8Array, chunkSize = 64 * 1024): () => AsyncIterable<Uint8Array> {
  return () => chunked(bytes, chunkSize);
}

function layerFor(ztocName: string): string {
  return goldenLayer(ztocName.replace(/\.span(64k|4m)\.ztoc$/, '')).path;
}

function assertProblem(report: VerifyReport, pattern: RegExp): void {
  assert.ok(
    report.problems.some((p) => pattern.test(p)),
    `expected a problem matching ${pattern}, got:\n${report.problems.join('\n')}`,
  );
  for (const p of report.problems) assert.ok(!p.includes('\n'), `one line per problem: ${p}`);
}

function regularFilesWithData(z: Ztoc): number {
  return z.toc.filter((m) => m.type === 'reg' && m.uncompressedSize > 0).length;
}

describe('verifyZtoc on the golden zTOCs', () => {
  const names = goldenFiles('ztoc', '.ztoc').filter((n) => !n.startsWith('upstream-'));

  test('covers all 20 layer zTOCs', () => assert.equal(names.length, 20));

  for (const name of names) {
    test(`verifies OK against its layer: ${name}`, async () => {
      const { ztoc } = readZtoc(name);
      const messages: string[] = [];
      const report = await verifyZtoc(fileSource(layerFor(name)), ztoc, { onProgress: (m) => messages.push(m) });
      assert.deepEqual(report.problems, []);
      assert.equal(report.spans, ztoc.maxSpanId + 1);
      assert.equal(report.filesChecked, regularFilesWithData(ztoc));
      assert.match(messages[0]!, /^pass 1: \d+ span digests, extracting \d+ files$/);
      assert.equal(messages.at(-1), `OK: ${report.spans} spans, ${report.filesChecked} files`);
    });
  }

  test('chunk boundaries do not matter (odd and 1-byte chunks)', async () => {
    for (const [name, chunk] of [
      ['gotar-mini.tar.gzip6n.gz.span64k.ztoc', 777],
      ['gotar-mini.tar.nodezlib6.gz.span64k.ztoc', 4099],
      ['gotar-mini.tar.span64k.ztoc', 333],
      ['tiny-gnu.tar.gz.span64k.ztoc', 1],
    ] as const) {
      const { ztoc } = readZtoc(name);
      const report = await verifyZtoc(fileSource(layerFor(name), chunk), ztoc);
      assert.deepEqual(report.problems, [], `${name} in ${chunk}-byte chunks`);
      assert.equal(report.filesChecked, regularFilesWithData(ztoc));
    }
  });
});

describe('verifyZtoc finds damage', () => {
  const gzName = 'gotar-mini.tar.gzip6n.gz.span64k.ztoc';
  const gzLayer = layerFor(gzName);

  test('one flipped byte inside a checkpoint window', async () => {
    const { bytes, ztoc } = readZtoc(gzName);
    const blobAt = bytes.indexOf(ztoc.checkpoints);
    assert.ok(blobAt > 0);
    const copy = Buffer.from(bytes);
    const windowByte = blobAt + 12 + 2 * 32785 + 17 + WINDOW_SIZE - 1; // last byte of checkpoint 2's window
    copy[windowByte]! ^= 0x01;
    const report = await verifyZtoc(fileSource(gzLayer), parseZtoc(copy));
    assertProblem(report, /^checkpoint 2 window differs/);
  });

  test('a wrong window breaks extraction from that checkpoint', async () => {
    const { ztoc } = readZtoc(gzName);
    const { spanSize, checkpoints } = decodeGzipCheckpoints(ztoc.checkpoints);
    const damaged = checkpoints.map((cp, i) => (i === 1 ? { ...cp, window: new Uint8Array(WINDOW_SIZE).fill(0x55) } : cp));
    const report = await verifyZtoc(fileSource(gzLayer), { ...ztoc, checkpoints: encodeGzipCheckpoints(spanSize, damaged) });
    assertProblem(report, /^checkpoint 1 window differs/);
    assertProblem(report, /^file usr\/lib\/f011\.bin: content differs when extracted from checkpoint 1$/);
  });

  test('wrong bits of a checkpoint', async () => {
    const { ztoc } = readZtoc(gzName);
    const { spanSize, checkpoints } = decodeGzipCheckpoints(ztoc.checkpoints);
    assert.equal(checkpoints[1]!.bits, 5);
    const damaged = checkpoints.map((cp, i) => (i === 1 ? { ...cp, bits: 0 } : cp));
    const report = await verifyZtoc(fileSource(gzLayer), { ...ztoc, checkpoints: encodeGzipCheckpoints(spanSize, damaged) });
    assertProblem(report, /^span 1 digest mismatch/);
    assertProblem(report, /^file usr\/lib\/f011\.bin: could not be extracted from checkpoint 1: inflate error/);
  });

  test('a wrong span digest', async () => {
    const { ztoc } = readZtoc(gzName);
    const wrong = `sha256:${'0'.repeat(64)}`;
    const spanDigests = ztoc.spanDigests.map((d, i) => (i === 3 ? wrong : d));
    const report = await verifyZtoc(fileSource(gzLayer), { ...ztoc, spanDigests });
    assert.deepEqual(report.problems, [`span 3 digest mismatch: expected ${wrong} got ${ztoc.spanDigests[3]}`]);
  });

  test('a wrong entry offset (gzip layer)', async () => {
    const { ztoc } = readZtoc(gzName);
    const index = ztoc.toc.findIndex((m) => utf8.decode(m.name) === 'usr/lib/f013.bin');
    const toc = ztoc.toc.map((m, i) => (i === index ? { ...m, uncompressedOffset: m.uncompressedOffset + 512 } : m));
    const report = await verifyZtoc(fileSource(gzLayer), { ...ztoc, toc });
    assertProblem(report, /^entry usr\/lib\/f013\.bin: uncompressed_offset \d+ but its data starts at \d+$/);
    assertProblem(report, /^file usr\/lib\/f013\.bin: content differs when extracted from checkpoint 1$/);
  });

  test('a wrong entry offset (uncompressed layer)', async () => {
    const name = 'gnutar.tar.span64k.ztoc';
    const { ztoc } = readZtoc(name);
    const index = ztoc.toc.findIndex((m) => m.type === 'reg' && m.uncompressedSize > 1000);
    const label = utf8.decode(ztoc.toc[index]!.name);
    const toc = ztoc.toc.map((m, i) => (i === index ? { ...m, uncompressedOffset: m.uncompressedOffset - 512 } : m));
    const report = await verifyZtoc(fileSource(layerFor(name)), { ...ztoc, toc });
    assertProblem(report, new RegExp(`^entry ${label}: uncompressed_offset`));
    assertProblem(report, new RegExp(`^file ${label}: content differs`));
  });

  test('wrong sizes and span count', async () => {
    const { ztoc } = readZtoc('tiny-gnu.tar.gz.span64k.ztoc');
    const report = await verifyZtoc(fileSource(layerFor('tiny-gnu.tar.gz.span64k.ztoc')), {
      ...ztoc,
      compressedArchiveSize: 126,
      uncompressedArchiveSize: 2560,
      maxSpanId: 1,
    });
    assertProblem(report, /^compressed_archive_size 126 but the layer is 125 bytes$/);
    assertProblem(report, /^uncompressed_archive_size 2560 but the tar stream ends at 2048$/);
    assertProblem(report, /^max_span_id 1 but there are 1 checkpoints$/);
    assertProblem(report, /^1 span digests for max_span_id 1$/);
  });

  test('a missing entry', async () => {
    const name = 'gotar-mini.tar.span64k.ztoc';
    const { ztoc } = readZtoc(name);
    const report = await verifyZtoc(fileSource(layerFor(name)), { ...ztoc, toc: ztoc.toc.slice(0, -1) });
    assertProblem(report, new RegExp(`^TOC lists ${ztoc.toc.length - 1} entries but the tar stream has ${ztoc.toc.length}$`));
  });

  test('out-of-order checkpoints', async () => {
    const { ztoc } = readZtoc(gzName);
    const { spanSize, checkpoints } = decodeGzipCheckpoints(ztoc.checkpoints);
    const swapped = [checkpoints[0]!, checkpoints[2]!, checkpoints[1]!, ...checkpoints.slice(3)];
    const report = await verifyZtoc(fileSource(gzLayer), { ...ztoc, checkpoints: encodeGzipCheckpoints(spanSize, swapped) });
    assertProblem(report, /^checkpoint 2 is not after checkpoint 1/);
  });

  test('a truncated layer gives problems, not an exception', async () => {
    const { ztoc } = readZtoc(gzName);
    const layer = readFileSync(gzLayer);
    const report = await verifyZtoc(bytesSource(layer.subarray(0, 200000)), ztoc);
    assertProblem(report, /^compressed_archive_size \d+ but the layer is 200000 bytes$/);
    assertProblem(report, /^layer does not decompress: /);
    assertProblem(report, /^file usr\/.*: could not be extracted from checkpoint \d: the layer ended/);
  });

  test('a failing read is thrown, not reported', async () => {
    const { ztoc } = readZtoc(gzName);
    const failing = async function* () {
      yield readFileSync(gzLayer).subarray(0, 1000);
      throw new Error('disk gone');
    };
    await assert.rejects(verifyZtoc(failing, ztoc), /disk gone/);
  });
});

describe('verifyZtoc on concatenated gzip members', () => {
  test('extracts across member boundaries and accepts a checkpoint at a member header', async () => {
    // gotar-mini.tar as three gzip members; checkpoint 1 sits at the end of member 2's header (bits 0).
    const tar = readFileSync(goldenPath('layers', 'gotar-mini.tar'));
    const cuts = [0, 200001, 500003, tar.length];
    const members = cuts.slice(1).map((end, i) => gzipSync(tar.subarray(cuts[i], end)));
    const layer = Buffer.concat(members);
    const { ztoc } = readZtoc('gotar-mini.tar.gzip6n.gz.span4m.ztoc');
    const header = 10;
    const secondIn = members[0]!.length + header;
    const checkpoints = [
      { in: header, out: 0, bits: 0, window: new Uint8Array(WINDOW_SIZE) },
      { in: secondIn, out: cuts[1]!, bits: 0, window: new Uint8Array(tar.subarray(cuts[1]! - WINDOW_SIZE, cuts[1])) },
    ];
    const multi: Ztoc = {
      ...ztoc,
      compressedArchiveSize: layer.length,
      maxSpanId: 1,
      spanDigests: [`sha256:${sha256Hex(layer.subarray(header, secondIn))}`, `sha256:${sha256Hex(layer.subarray(secondIn))}`],
      checkpoints: encodeGzipCheckpoints(65536, checkpoints),
    };
    const report = await verifyZtoc(bytesSource(layer, 5000), multi);
    assert.deepEqual(report.problems, []);
    assert.equal(report.spans, 2);
    assert.equal(report.filesChecked, regularFilesWithData(ztoc));
  });
});
