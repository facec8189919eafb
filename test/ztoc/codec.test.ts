import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  decodeGzipCheckpoints,
  decodeTarZinfo,
  encodeGzipCheckpoints,
  encodeTarZinfo,
  parseZtoc,
  serializeZtoc,
} from '../../lambda/ztoc/codec.ts';
import type { EntryType, FileMetadata, Ztoc } from '../../lambda/ztoc/types.ts';
import { WINDOW_SIZE, ZtocError } from '../../lambda/ztoc/types.ts';
import { goldenFiles, goldenPath, sha256Hex } from '../support/golden.ts';

const utf8 = new TextDecoder();
const latin1 = new TextDecoder('latin1');

/** Every golden zTOC: the per-layer ones, upstream's serializer golden and the copies inside the index goldens. */
function goldenZtocs(): { label: string; path: string }[] {
  const found = goldenFiles('ztoc', '.ztoc').map((name) => ({ label: name, path: goldenPath('ztoc', name) }));
  for (const dir of goldenFiles('index')) {
    for (const name of goldenFiles(`index/${dir}`).filter((n) => n.startsWith('ztoc-'))) {
      found.push({ label: `index/${dir}/${name}`, path: goldenPath('index', dir, name) });
    }
  }
  return found;
}

interface DumpFile {
  name: string;
  type: string;
  uncompressed_offset: number;
  uncompressed_size: number;
  linkname: string;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mod_time: string;
  devmajor: number;
  devminor: number;
  xattrs_raw_pax_records: Record<string, string>;
}

interface Dump {
  ztoc_digest: string;
  ztoc_size: number;
  version: string;
  build_tool_identifier: string;
  compressed_archive_size: number;
  uncompressed_archive_size: number;
  compression_algorithm: string;
  max_span_id: number;
  span_digests: string[];
  checkpoints_blob_len: number;
  checkpoints_blob_sha256: string;
  gzip_header_num_checkpoints?: number;
  gzip_header_span_size?: number;
  gzip_checkpoints?: { compressed_offset_in: number; uncompressed_offset_out: number; bits: number; window_sha256: string }[];
  tar_zinfo?: { version: number; span_size: number; size: number };
  files: DumpFile[];
}

function assertEntryMatchesDump(entry: FileMetadata, expected: DumpFile, where: string): void {
  // The dump prints names as text; golden names are ASCII/UTF-8, so decoding the raw bytes compares them.
  assert.equal(utf8.decode(entry.name), expected.name, `${where} name`);
  assert.equal(entry.type, expected.type, `${where} type`);
  assert.equal(entry.uncompressedOffset, expected.uncompressed_offset, `${where} offset`);
  assert.equal(entry.uncompressedSize, expected.uncompressed_size, `${where} size`);
  assert.equal(utf8.decode(entry.linkname), expected.linkname, `${where} linkname`);
  assert.deepEqual(
    [entry.mode, entry.uid, entry.gid, entry.devmajor, entry.devminor],
    [expected.mode, expected.uid, expected.gid, expected.devmajor, expected.devminor],
    `${where} numbers`,
  );
  assert.equal(utf8.decode(entry.uname), expected.uname, `${where} uname`);
  assert.equal(utf8.decode(entry.gname), expected.gname, `${where} gname`);
  assert.equal(entry.modTime, expected.mod_time, `${where} mod_time`);
  const xattrs = Object.fromEntries(entry.xattrs.map((x) => [utf8.decode(x.key), utf8.decode(x.value)]));
  assert.deepEqual(xattrs, expected.xattrs_raw_pax_records, `${where} xattrs`);
}

describe('zTOC codec against the golden zTOCs', () => {
  const ztocs = goldenZtocs();

  test('finds every golden zTOC', () => {
    assert.ok(ztocs.some((z) => z.label === 'upstream-TestWriteZtoc.ztoc'));
    assert.equal(ztocs.filter((z) => !z.label.startsWith('index/')).length, 21);
    assert.equal(ztocs.length, 28);
  });

  for (const { label, path } of ztocs) {
    test(`serializeZtoc(parseZtoc(x)) is byte-identical: ${label}`, () => {
      const bytes = readFileSync(path);
      const again = serializeZtoc(parseZtoc(bytes));
      assert.equal(again.length, bytes.length);
      assert.equal(sha256Hex(again), sha256Hex(bytes));
    });
  }

  for (const dumpName of goldenFiles('dump', '.json')) {
    test(`parsed fields match the dump: ${dumpName}`, () => {
      const dump = JSON.parse(readFileSync(goldenPath('dump', dumpName), 'utf8')) as Dump;
      const bytes = readFileSync(goldenPath('ztoc', dumpName.replace(/\.json$/, '.ztoc')));
      assert.equal(`sha256:${sha256Hex(bytes)}`, dump.ztoc_digest);
      const z = parseZtoc(bytes);
      assert.equal(z.version, dump.version);
      assert.equal(z.buildToolIdentifier, dump.build_tool_identifier);
      assert.equal(z.compressedArchiveSize, dump.compressed_archive_size);
      assert.equal(z.uncompressedArchiveSize, dump.uncompressed_archive_size);
      assert.equal(z.compressionAlgorithm, dump.compression_algorithm);
      assert.equal(z.maxSpanId, dump.max_span_id);
      assert.deepEqual(z.spanDigests, dump.span_digests);
      assert.equal(z.checkpoints.length, dump.checkpoints_blob_len);
      assert.equal(sha256Hex(z.checkpoints), dump.checkpoints_blob_sha256);
      assert.equal(z.toc.length, dump.files.length);
      z.toc.forEach((entry, i) => {
        assertEntryMatchesDump(entry, dump.files[i]!, `${dumpName} entry ${i}`);
      });

      if (dump.compression_algorithm === 'gzip') {
        const { spanSize, checkpoints } = decodeGzipCheckpoints(z.checkpoints);
        assert.equal(spanSize, dump.gzip_header_span_size);
        assert.equal(checkpoints.length, dump.gzip_header_num_checkpoints);
        assert.deepEqual(
          checkpoints.map((c) => ({
            compressed_offset_in: c.in,
            uncompressed_offset_out: c.out,
            bits: c.bits,
            window_sha256: sha256Hex(c.window),
          })),
          dump.gzip_checkpoints!.map(({ compressed_offset_in, uncompressed_offset_out, bits, window_sha256 }) => ({
            compressed_offset_in,
            uncompressed_offset_out,
            bits,
            window_sha256,
          })),
        );
        assert.deepEqual(encodeGzipCheckpoints(spanSize, checkpoints), z.checkpoints);
      } else {
        const zinfo = decodeTarZinfo(z.checkpoints);
        assert.deepEqual({ version: zinfo.version, span_size: zinfo.spanSize, size: zinfo.size }, dump.tar_zinfo);
        assert.deepEqual(encodeTarZinfo(zinfo.spanSize, zinfo.size), z.checkpoints);
      }
    });
  }
});

describe('serializeZtoc from scratch', () => {
  test("reproduces upstream's TestWriteZtoc golden", () => {
    const zeroEntry: FileMetadata = {
      name: new Uint8Array(0),
      type: '' as EntryType, // upstream's zero-value FileMetadata
      uncompressedOffset: 0,
      uncompressedSize: 0,
      linkname: new Uint8Array(0),
      mode: 0,
      uid: 0,
      gid: 0,
      uname: new Uint8Array(0),
      gname: new Uint8Array(0),
      modTime: '0001-01-01T00:00:00Z',
      devmajor: 0,
      devminor: 0,
      xattrs: [],
    };
    const z: Ztoc = {
      version: '0.9',
      buildToolIdentifier: 'AWS SOCI CLI',
      compressedArchiveSize: 2000000,
      uncompressedArchiveSize: 2500000,
      toc: [zeroEntry, { ...zeroEntry }],
      compressionAlgorithm: 'gzip',
      maxSpanId: 3,
      spanDigests: [],
      checkpoints: new Uint8Array(65536),
    };
    const bytes = serializeZtoc(z);
    assert.equal(bytes.length, 65928);
    assert.equal(sha256Hex(bytes), 'eba28fdf50b1b57543f57dd051b2468c1d4f57b64d2006c75aa4de1d03e6c7ec');
  });

  test('keeps binary xattr values and non-UTF-8 names as raw bytes, sorted by key', () => {
    const golden = parseZtoc(readFileSync(goldenPath('ztoc', 'tiny-gnu.tar.span4m.ztoc')));
    const binary = Uint8Array.from([0x01, 0x00, 0x00, 0x02, 0xff, 0xfe, 0x80, 0x00]);
    const name = Uint8Array.from([0x63, 0xe9, 0xff, 0x2f, 0x00, 0x41]); // latin-1 é, 0xff, NUL
    const entry: FileMetadata = {
      ...golden.toc[0]!,
      name,
      uid: 0xfffffffe,
      gid: 4294967295,
      xattrs: [
        { key: new TextEncoder().encode('SCHILY.xattr.security.capability'), value: binary },
        { key: new TextEncoder().encode('SCHILY.xattr.a'), value: new Uint8Array(0) },
      ],
    };
    const back = parseZtoc(serializeZtoc({ ...golden, toc: [entry] })).toc[0]!;
    assert.deepEqual(back.name, name);
    assert.equal(back.uid, 0xfffffffe);
    assert.equal(back.gid, 4294967295);
    assert.deepEqual(
      back.xattrs.map((x) => latin1.decode(x.key)),
      ['SCHILY.xattr.a', 'SCHILY.xattr.security.capability'],
    );
    assert.deepEqual(back.xattrs[1]!.value, binary);
  });

  test('writes compression_algorithm only for uncompressed layers', () => {
    const tar = parseZtoc(readFileSync(goldenPath('ztoc', 'tiny-gnu.tar.span4m.ztoc')));
    const asGzip = serializeZtoc({ ...tar, compressionAlgorithm: 'gzip' });
    assert.equal(parseZtoc(asGzip).compressionAlgorithm, 'gzip');
    assert.ok(asGzip.length < serializeZtoc(tar).length);
  });

  test('rejects values a zTOC cannot hold', () => {
    const tar = parseZtoc(readFileSync(goldenPath('ztoc', 'tiny-gnu.tar.span4m.ztoc')));
    assert.throws(() => serializeZtoc({ ...tar, compressedArchiveSize: 2 ** 60 }), ZtocError);
    assert.throws(() => serializeZtoc({ ...tar, toc: [{ ...tar.toc[0]!, uid: -1 }] }), ZtocError);
    assert.throws(() => serializeZtoc({ ...tar, maxSpanId: 2 ** 31 }), ZtocError);
  });
});

/** Asserts a ZtocError('bad-ztoc') with a one-line message, and nothing else. */
function assertBadZtoc(run: () => unknown, label: string): void {
  let caught: unknown;
  try {
    run();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ZtocError, `${label}: expected ZtocError, got ${String(caught)}`);
  assert.equal(caught.code, 'bad-ztoc', label);
  assert.ok(caught.message.length > 0 && !caught.message.includes('\n'), `${label}: one-line message`);
}

describe('parseZtoc on bad input', () => {
  const good = readFileSync(goldenPath('ztoc', 'gotar-mini.tar.gzip6n.gz.span64k.ztoc'));

  test('empty, tiny and random input', () => {
    assertBadZtoc(() => parseZtoc(new Uint8Array(0)), 'empty');
    assertBadZtoc(() => parseZtoc(Uint8Array.of(1, 2, 3)), '3 bytes');
    assertBadZtoc(() => parseZtoc(new TextEncoder().encode('{"this is": "json, not a zTOC"}')), 'json');
    let seed = 12345;
    for (let n = 0; n < 200; n++) {
      const junk = new Uint8Array(1 + ((n * 37) % 4096));
      for (let i = 0; i < junk.length; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        junk[i] = seed >>> 24;
      }
      assertBadZtoc(() => parseZtoc(junk), `random ${n}`);
    }
  });

  test('every truncation of a real zTOC', () => {
    // The zTOC ends with its first-created strings, so any cut loses referenced bytes.
    for (let len = 0; len < good.length; len += len < 2048 ? 1 : 997) {
      assertBadZtoc(() => parseZtoc(good.subarray(0, len)), `truncated to ${len}`);
    }
  });

  test('corrupted offsets never escape as another kind of error', () => {
    const tiny = readFileSync(goldenPath('ztoc', 'tiny-gnu.tar.gz.span4m.ztoc'));
    for (let at = 0; at < tiny.length; at++) {
      for (const value of [0xff, 0x7f, 0x80]) {
        const copy = Uint8Array.from(tiny);
        copy[at] = value;
        try {
          parseZtoc(copy);
        } catch (err) {
          assert.ok(err instanceof ZtocError && err.code === 'bad-ztoc', `byte ${at} = ${value}: ${String(err)}`);
        }
      }
    }
  });

  test('an int64 above 2^53 is rejected', () => {
    const z = parseZtoc(readFileSync(goldenPath('ztoc', 'tiny-gnu.tar.span4m.ztoc')));
    const bytes = serializeZtoc({ ...z, compressedArchiveSize: 0x1234567 });
    const at = Buffer.from(bytes).indexOf(Buffer.from([0x67, 0x45, 0x23, 0x01, 0, 0, 0, 0]));
    assert.ok(at > 0);
    bytes[at + 6] = 0x40; // now 2^54 + 0x1234567
    assertBadZtoc(() => parseZtoc(bytes), 'int64 above 2^53');
  });
});

describe('gzip checkpoint blob', () => {
  const window = (fill: number) => new Uint8Array(WINDOW_SIZE).fill(fill);

  test('layout of the worked example in docs/format.md §3.3', () => {
    const blob = encodeGzipCheckpoints(4194304, [{ in: 10, out: 0, bits: 0, window: window(0) }]);
    assert.equal(blob.length, 32797);
    assert.deepEqual(
      [...blob.subarray(0, 29)],
      [1, 0, 0, 0, 0, 0, 0x40, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, ...new Array<number>(9).fill(0)],
    );
  });

  test('round trip of several checkpoints', () => {
    const cps = [
      { in: 21, out: 0, bits: 0, window: window(0) },
      { in: 73389, out: 107719, bits: 5, window: window(7) },
      { in: 2 ** 40, out: 2 ** 41, bits: 7, window: window(255) },
    ];
    const blob = encodeGzipCheckpoints(65536, cps);
    assert.equal(blob.length, 12 + 3 * 32785);
    assert.deepEqual(decodeGzipCheckpoints(blob), { spanSize: 65536, checkpoints: cps });
  });

  test('accepts v1 blobs (checkpoint 0 omitted) and count 0', () => {
    const v2 = encodeGzipCheckpoints(1024, [
      { in: 10, out: 0, bits: 0, window: window(0) },
      { in: 500, out: 2000, bits: 3, window: window(9) },
    ]);
    const v1 = Uint8Array.from([...v2.subarray(0, 12), ...v2.subarray(12 + 32785)]);
    assert.deepEqual(decodeGzipCheckpoints(v1), decodeGzipCheckpoints(v2));
    assert.deepEqual(decodeGzipCheckpoints(encodeGzipCheckpoints(7, [])), { spanSize: 7, checkpoints: [] });
  });

  test('rejects blobs whose length does not fit the count', () => {
    const blob = encodeGzipCheckpoints(1024, [{ in: 10, out: 0, bits: 0, window: window(0) }]);
    assertBadZtoc(() => decodeGzipCheckpoints(new Uint8Array(0)), 'empty');
    assertBadZtoc(() => decodeGzipCheckpoints(blob.subarray(0, 11)), 'short header');
    assertBadZtoc(() => decodeGzipCheckpoints(blob.subarray(0, blob.length - 1)), 'one byte short');
    const tooFew = Uint8Array.from(blob);
    tooFew[0] = 3; // 3 announced, 1 stored
    assertBadZtoc(() => decodeGzipCheckpoints(tooFew), 'too few checkpoints');
    const badBits = Uint8Array.from(blob);
    badBits[12 + 16] = 8;
    assertBadZtoc(() => decodeGzipCheckpoints(badBits), 'bits 8');
  });
});

describe('TarZinfo blob', () => {
  test('matches the golden 48-byte blob and round-trips', () => {
    const z = parseZtoc(readFileSync(goldenPath('ztoc', 'gnutar.tar.span64k.ztoc')));
    const blob = encodeTarZinfo(65536, 16496640);
    assert.equal(blob.length, 48);
    assert.deepEqual(blob, z.checkpoints);
    assert.deepEqual(decodeTarZinfo(blob), { version: 2, spanSize: 65536, size: 16496640 });
  });

  test('an empty file omits size (32 bytes)', () => {
    const blob = encodeTarZinfo(4194304, 0);
    assert.equal(blob.length, 32);
    assert.deepEqual(decodeTarZinfo(blob), { version: 2, spanSize: 4194304, size: 0 });
  });

  test('garbage is a ZtocError', () => {
    assertBadZtoc(() => decodeTarZinfo(new Uint8Array(0)), 'empty');
    assertBadZtoc(() => decodeTarZinfo(encodeTarZinfo(65536, 10240).subarray(0, 20)), 'truncated');
  });
});
