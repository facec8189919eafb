// The engine's documented limits (lambda/ztoc/limits.ts, README "Limits"), each at its edge: the last
// accepted input and the first refused one (code `limit-exceeded`, one line), with the limits lowered
// where the real value would need a big input; and the giant deflate block, which is indexed exactly
// (same checkpoints as the zran reference) without keeping its output.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import zlib from 'node:zlib';
import { type BuildZtocOptions, buildZtoc } from '../../lambda/ztoc/builder.ts';
import { indexGzip } from '../../lambda/ztoc/gzip-index.ts';
import { DEFAULT_LIMITS } from '../../lambda/ztoc/limits.ts';
import { GoTarReader } from '../../lambda/ztoc/tar-reader.ts';
import type { ZtocError } from '../../lambda/ztoc/types.ts';
import { chunked } from '../support/bytes.ts';
import { emptyMembersLayer, giantBlockLayer, paxRecordsTar, smallTar } from '../support/hostile-layers.ts';
import { tarEntry, tarHeaderBlock } from '../support/tar-fixtures.ts';
import { referenceCheckpoints } from '../support/zran-reference.ts';

async function refused(bytes: Uint8Array, pattern: RegExp, options: BuildZtocOptions = {}): Promise<void> {
  const outcome = await buildZtoc(chunked(bytes), options);
  assert.equal(outcome.indexable, false, 'refused');
  if (outcome.indexable) return;
  assert.equal(outcome.code, 'limit-exceeded', outcome.reason);
  assert.match(outcome.reason, pattern);
  assert.ok(outcome.limit && outcome.reason.includes(`limit ${outcome.limit}`), `the limit is named: ${outcome.limit}`);
  assert.ok(!outcome.reason.includes('\n'));
}

async function indexed(bytes: Uint8Array, options: BuildZtocOptions = {}) {
  const outcome = await buildZtoc(chunked(bytes), options);
  assert.equal(outcome.indexable, true, outcome.indexable ? '' : outcome.reason);
  return outcome;
}

/** A gzip member of `tar` whose deflate data starts with `count` empty stored blocks (flushes before data). */
function emptyBlocksFirst(count: number, tar: Buffer): Buffer {
  const emptyStored = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]); // BFINAL 0, stored, LEN 0
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(zlib.crc32(tar) >>> 0, 0);
  trailer.writeUInt32LE(tar.length, 4);
  return Buffer.concat([
    Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]),
    ...new Array(count).fill(emptyStored),
    zlib.deflateRawSync(tar),
    trailer,
  ]);
}

/** A gzip member of `data` with FNAME `name` and FCOMMENT `comment`. */
function gzipWithNames(data: Buffer, name: string, comment = ''): Buffer {
  const flags = 8 | (comment ? 16 : 0);
  const head = Buffer.concat([
    Buffer.from([0x1f, 0x8b, 8, flags, 0, 0, 0, 0, 0, 3]),
    Buffer.from(`${name}\0`),
    comment ? Buffer.from(`${comment}\0`) : Buffer.alloc(0),
  ]);
  const member = zlib.gzipSync(data);
  return Buffer.concat([head, member.subarray(10)]);
}

describe('limit: checkpoints beyond one per span (extraCheckpoints)', () => {
  test(`${DEFAULT_LIMITS.extraCheckpoints} empty members before the data are indexed; one more is refused`, async () => {
    const at = DEFAULT_LIMITS.extraCheckpoints;
    const ok = await indexed(emptyMembersLayer(at));
    assert.equal(ok.indexable && ok.summary.spans, at + 1, 'one checkpoint per member at output 0');
    await refused(emptyMembersLayer(at + 1), /more than 65 checkpoints by uncompressed offset 0 .*extraCheckpoints/);
  });

  test('empty deflate blocks before any data count the same way', async () => {
    await indexed(emptyBlocksFirst(10, smallTar()), { limits: { extraCheckpoints: 10 } });
    await refused(emptyBlocksFirst(11, smallTar()), /extraCheckpoints/, { limits: { extraCheckpoints: 10 } });
  });

  test('span-driven checkpoints never count against it (a checkpoint per 1 KiB span of a 3 MB layer)', async () => {
    const data = randomBytes(3 << 20); // stored blocks of 16 KiB: a checkpoint at nearly every one
    const tar = Buffer.concat([tarEntry(tarHeaderBlock({ name: 'data', size: data.length, typeflag: '0' }), data), Buffer.alloc(1024)]);
    const layer = zlib.gzipSync(tar);
    const ok = await indexed(layer, { spanSize: 1024, limits: { extraCheckpoints: 0 } });
    const expected = referenceCheckpoints(layer, 1024).length;
    assert.ok(expected > 100);
    assert.equal(ok.indexable && ok.summary.spans, expected);
  });
});

describe('limit: gzip header length (gzipHeaderBytes)', () => {
  const limits = { gzipHeaderBytes: 64 };
  test('a header of exactly the limit is parsed; a longer FNAME or FCOMMENT is refused', async () => {
    const tar = smallTar();
    await indexed(gzipWithNames(tar, 'n'.repeat(64 - 11)), { limits }); // 10 + name + NUL = 64
    await refused(gzipWithNames(tar, 'n'.repeat(64 - 10)), /gzip header at offset 0 is longer than 64 bytes/, { limits });
    await refused(gzipWithNames(tar, 'name', 'c'.repeat(100)), /longer than 64 bytes/, { limits });
  });

  test('a FNAME without its NUL is refused at the limit, not read to the end of the layer', async () => {
    const head = Buffer.from([0x1f, 0x8b, 8, 8, 0, 0, 0, 0, 0, 3]);
    let read = 0;
    async function* endless(): AsyncGenerator<Uint8Array> {
      yield head;
      for (;;) {
        read += 65536;
        yield Buffer.alloc(65536, 0x61);
      }
    }
    const outcome = await buildZtoc(endless());
    assert.ok(!outcome.indexable && outcome.code === 'limit-exceeded', 'refused');
    assert.ok(read <= 4 * DEFAULT_LIMITS.gzipHeaderBytes, `read ${read} bytes`);
  });
});

describe('limit: PAX records per entry (paxRecordsPerEntry)', () => {
  test(`${DEFAULT_LIMITS.paxRecordsPerEntry} records are accepted, one more is refused`, async () => {
    const ok = await indexed(zlib.gzipSync(paxRecordsTar(1, DEFAULT_LIMITS.paxRecordsPerEntry)));
    assert.equal(ok.indexable && ok.toc.at(0)!.xattrs.length, DEFAULT_LIMITS.paxRecordsPerEntry);
    await refused(
      zlib.gzipSync(paxRecordsTar(1, DEFAULT_LIMITS.paxRecordsPerEntry + 1)),
      /PAX header at offset 0 has more than 10000 records/,
    );
  });

  test('xattr records survive the compact TOC storage byte for byte, in order', async () => {
    const ok = await indexed(paxRecordsTar(2, 3));
    assert.ok(ok.indexable);
    const records = ok.toc.at(1)!.xattrs.map((r) => [Buffer.from(r.key).toString(), Buffer.from(r.value).toString()]);
    assert.deepEqual(records, [
      ['SCHILY.xattr.user.k0', 'v'],
      ['SCHILY.xattr.user.k1', 'v'],
      ['SCHILY.xattr.user.k2', 'v'],
    ]);
    assert.deepEqual(ok.ztoc.toc[1]!.xattrs, ok.toc.at(1)!.xattrs);
  });

  test('the tar reader applies it to global headers too', () => {
    const body = Buffer.from('11 a.one=1\n11 a.two=2\n');
    const global = Buffer.concat([
      tarEntry(tarHeaderBlock({ name: 'pax_global_header', size: body.length, typeflag: 'g' }), body),
      Buffer.alloc(1024),
    ]);
    const reader = new GoTarReader({ maxPaxRecords: 1 });
    assert.throws(
      () => reader.push(global),
      (err: ZtocError) => err.code === 'limit-exceeded' && /more than 1 records/.test(err.message),
    );
    assert.throws(
      () => new GoTarReader({ maxPaxRecords: 2 }).push(global),
      (err: ZtocError) => err.code === 'unsupported-tar-entry',
    );
  });
});

describe('limit: TOC bytes against the layer size (tocBytesBase + tocBytesPerLayerByte)', () => {
  // 3,000 empty files: ~500 KB of TOC from a few tens of KB of gzip.
  const tar = Buffer.concat([
    ...Array.from({ length: 3000 }, (_, i) => tarHeaderBlock({ name: `dir/file-${i}`, size: 0, typeflag: '0' })),
    Buffer.alloc(1024),
  ]);
  const layer = zlib.gzipSync(tar);
  const limits = { tocBytesBase: 64 << 10, tocBytesPerLayerByte: 2 };

  test('a TOC far larger than the layer is refused, on the inflating thread and on the TOC worker', async () => {
    await refused(layer, /the TOC would exceed \d+ bytes at entry \d+ .*limit tocBytes/, { limits });
    await refused(layer, /limit tocBytes/, { limits, tocWorker: true, sizeHint: 1 << 30 });
    await refused(tar, /limit tocBytes/, { limits: { tocBytesBase: 64 << 10, tocBytesPerLayerByte: 0 } });
  });

  test('the default limits accept it (many small files are ordinary)', async () => {
    const ok = await indexed(layer);
    assert.ok(ok.indexable && ok.summary.entries === 3000);
  });
});

describe('a deflate block larger than the retained output (blockOutputRetained)', () => {
  // 24 MiB of zeros in one non-final fixed-Huffman block, then a small final block: a checkpoint is due
  // right after the giant block, whose output is long gone when its bits must be settled. Before a
  // stored block the forward probe is ambiguous, so the bits come from the block's follower.
  for (const tail of ['fixed', 'stored'] as const) {
    const file = giantBlockLayer(24 << 20, tail);

    test(`then a ${tail} block: followed in software, the same checkpoints as the zran reference at any span`, async () => {
      for (const span of [1 << 20, 4 << 20, 64 << 20]) {
        const expected = referenceCheckpoints(file, span);
        let out = 0;
        const r = await indexGzip(
          chunked(file),
          (c) => {
            out += c.length;
          },
          { spanSize: span, limits: { blockOutputRetained: 2 << 20 } },
        );
        assert.deepEqual(
          r.checkpoints.map((c) => ({ in: c.in, out: c.out, bits: c.bits })),
          expected,
          `span ${span}`,
        );
        assert.ok(r.stats.followSteps >= 2, `followed in steps (${r.stats.followSteps})`);
        assert.equal(out, r.uncompressedSize);
      }
    });

    test(`then a ${tail} block: the same zTOC as when the block is kept whole`, async () => {
      const followed = await indexed(file, { spanSize: 1 << 20, limits: { blockOutputRetained: 1 << 20 } });
      const kept = await indexed(file, { spanSize: 1 << 20, limits: { blockOutputRetained: Number.MAX_SAFE_INTEGER } });
      assert.ok(followed.indexable && kept.indexable);
      assert.equal(followed.summary.digest, kept.summary.digest);
      assert.ok(followed.summary.spans >= 2);
    });
  }
});
