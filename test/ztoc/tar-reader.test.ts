import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { formatGoTime, GoTarReader } from '../../lambda/ztoc/tar-reader.ts';
import type { FileMetadata } from '../../lambda/ztoc/types.ts';
import { ZtocError } from '../../lambda/ztoc/types.ts';
import { goldenLayer, goldenPath } from '../support/golden.ts';

const utf8 = new TextDecoder();
const text = (bytes: Uint8Array): string => utf8.decode(bytes);
const bytes = (value: string | Uint8Array): Uint8Array => (typeof value === 'string' ? new TextEncoder().encode(value) : value);

/** Feeds `data` through one reusable chunk buffer (so a reader that kept references would break). */
function readTar(data: Uint8Array, chunkSize: (index: number) => number = () => data.length): GoTarReader {
  const reader = new GoTarReader();
  const scratch = new Uint8Array(Math.max(1, data.length));
  for (let offset = 0, i = 0; offset < data.length; i++) {
    const n = Math.min(Math.max(1, chunkSize(i)), data.length - offset);
    const chunk = scratch.subarray(0, n);
    chunk.set(data.subarray(offset, offset + n));
    reader.push(chunk);
    chunk.fill(0xee);
    offset += n;
  }
  reader.end();
  return reader;
}

function tarError(data: Uint8Array, chunkSize?: (index: number) => number): ZtocError {
  try {
    readTar(data, chunkSize);
  } catch (error) {
    assert.ok(error instanceof ZtocError, `expected a ZtocError, got ${String(error)}`);
    assert.doesNotMatch(error.message, /\n/);
    return error;
  }
  assert.fail('expected the tar to be rejected');
}

function seededSizes(seed: number, max: number): (index: number) => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return 1 + (state % max);
  };
}

// ---- a tiny tar writer, byte by byte, so every header field can be set to anything ----

interface HeaderSpec {
  name?: string | Uint8Array;
  type?: string;
  size?: number;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string | Uint8Array;
  format?: 'ustar' | 'gnu' | 'v7' | 'star';
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
  prefix?: string;
  /** Raw bytes written over the block before the checksum is computed. */
  patch?: [offset: number, bytes: number[] | string][];
  badChecksum?: boolean;
}

function putText(block: Uint8Array, offset: number, length: number, value: string | Uint8Array): void {
  block.set(bytes(value).subarray(0, length), offset);
}

function putOctal(block: Uint8Array, offset: number, length: number, value: number): void {
  putText(block, offset, length - 1, value.toString(8).padStart(length - 1, '0'));
}

function header(spec: HeaderSpec): Uint8Array {
  const block = new Uint8Array(512);
  putText(block, 0, 100, spec.name ?? 'file');
  putOctal(block, 100, 8, spec.mode ?? 0o644);
  putOctal(block, 108, 8, spec.uid ?? 0);
  putOctal(block, 116, 8, spec.gid ?? 0);
  putOctal(block, 124, 12, spec.size ?? 0);
  putOctal(block, 136, 12, spec.mtime ?? 1704067200);
  block[156] = (spec.type ?? '0').charCodeAt(0);
  putText(block, 157, 100, spec.linkname ?? '');
  const format = spec.format ?? 'ustar';
  if (format !== 'v7') {
    putText(block, 257, 8, format === 'gnu' ? 'ustar  \0' : 'ustar\x0000');
    putText(block, 265, 32, spec.uname ?? 'root');
    putText(block, 297, 32, spec.gname ?? 'root');
    putOctal(block, 329, 8, spec.devmajor ?? 0);
    putOctal(block, 337, 8, spec.devminor ?? 0);
    if (format !== 'gnu') putText(block, 345, format === 'star' ? 131 : 155, spec.prefix ?? '');
    if (format === 'star') putText(block, 508, 4, 'tar\0');
  }
  for (const [offset, patch] of spec.patch ?? []) block.set(typeof patch === 'string' ? bytes(patch) : patch, offset);
  block.fill(0x20, 148, 156);
  const sum = block.reduce((total, c) => total + c, 0) + (spec.badChecksum ? 1 : 0);
  putText(block, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return block;
}

const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

const padding = (length: number): Uint8Array => new Uint8Array((512 - (length % 512)) % 512);

function entry(spec: HeaderSpec, data: string | Uint8Array = ''): Uint8Array {
  const body = bytes(data);
  return concat(header({ size: body.length, ...spec }), body, padding(body.length));
}

function paxRecord(key: string | Uint8Array, value: string | Uint8Array): Uint8Array {
  const rest = concat(bytes(' '), bytes(key), bytes('='), bytes(value), bytes('\n'));
  let length = rest.length + 1;
  while (String(length).length + rest.length !== length) length = String(length).length + rest.length;
  return concat(bytes(String(length)), rest);
}

function pax(records: [string | Uint8Array, string | Uint8Array][] | Uint8Array, type = 'x'): Uint8Array {
  const body = records instanceof Uint8Array ? records : concat(...records.map(([k, v]) => paxRecord(k, v)));
  return entry({ name: 'PaxHeaders/file', type, format: 'ustar' }, body);
}

const gnuLong = (type: 'L' | 'K', value: string | Uint8Array): Uint8Array => entry({ name: '././@LongLink', type, format: 'gnu' }, value);

const END = new Uint8Array(1024);

/** Base-256 (GNU binary) encoding of a signed value into a numeric field. */
function base256(value: bigint, length: number): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(length * 8, value);
  for (let i = 0; i < length; i++) {
    out.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  out[0] = out[0]! | 0x80;
  return out;
}

function only(reader: GoTarReader): FileMetadata {
  assert.equal(reader.entries.length, 1);
  return reader.entries[0]!;
}

// ---- golden layers written by GNU tar and Go, checked against upstream's own zTOC dumps ----

/** The FileMetadata fields under the names of the golden dumps (names and values decoded as UTF-8). */
function asDumpFields(e: FileMetadata): Record<string, unknown> {
  return {
    name: text(e.name),
    type: e.type,
    uncompressed_offset: e.uncompressedOffset,
    uncompressed_size: e.uncompressedSize,
    linkname: text(e.linkname),
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    uname: text(e.uname),
    gname: text(e.gname),
    mod_time: e.modTime,
    devmajor: e.devmajor,
    devminor: e.devminor,
    // Object key order is the xattrs order: upstream's is sorted by key bytes.
    xattrs_raw_pax_records: Object.fromEntries(e.xattrs.map((x) => [text(x.key), text(x.value)])),
  };
}

describe('GoTarReader on golden layers', () => {
  for (const layer of ['gnutar.tar', 'gotar-mini.tar', 'tiny-gnu.tar', 'paxtar.tar']) {
    const data = new Uint8Array(readFileSync(goldenLayer(layer).path));
    const dump = JSON.parse(readFileSync(goldenPath('dump', `${layer}.span64k.json`), 'utf8')) as {
      uncompressed_archive_size: number;
      files: Record<string, unknown>[];
    };
    const chunkings: [string, (i: number) => number][] = [
      ['whole', () => data.length],
      ['511-byte', () => 511],
      ['513-byte', () => 513],
      ['random', seededSizes(data.length, 70000)],
    ];
    if (data.length < 1 << 20) chunkings.push(['1-byte', () => 1]);

    for (const [label, chunkSize] of chunkings) {
      test(`${layer}, ${label} chunks: every entry and the archive size match upstream`, () => {
        const reader = readTar(data, chunkSize);
        assert.equal(reader.done, true);
        assert.equal(reader.archiveSize, dump.uncompressed_archive_size);
        const actual = reader.entries.map(asDumpFields);
        const fields = Object.keys(actual[0]!);
        const wanted = dump.files.map((f) => Object.fromEntries(fields.map((k) => [k, f[k]])));
        assert.deepEqual(actual, wanted);
        const xattrKeys = (files: Record<string, unknown>[]) => files.map((f) => Object.keys(f.xattrs_raw_pax_records as object));
        assert.deepEqual(xattrKeys(actual), xattrKeys(wanted));
      });
    }
  }

  test('gnutar.tar: the record padding after the end marker is not part of the archive size', () => {
    const data = readFileSync(goldenLayer('gnutar.tar').path);
    const reader = new GoTarReader();
    reader.push(data);
    assert.equal(reader.done, true); // done as soon as the two zero blocks are seen, before end()
    assert.equal(reader.archiveSize, 16487936);
    assert.ok(data.length > reader.archiveSize);
    reader.push(new Uint8Array([1, 2, 3])); // ignored, as Go stops reading
    reader.end();
    assert.equal(reader.archiveSize, 16487936);
  });
});

// ---- header fields ----

describe('GoTarReader header fields', () => {
  test('a plain USTAR entry: offsets, sizes, owner, mode and time', () => {
    const tar = concat(
      entry({ name: 'etc/hostname', mode: 0o4755, uid: 1000, gid: 100, uname: 'me', gname: 'staff' }, 'box\n'),
      entry({ name: 'b', size: 0 }),
      END,
    );
    const reader = readTar(tar);
    assert.deepEqual(
      reader.entries.map((e) => [text(e.name), e.type, e.uncompressedOffset, e.uncompressedSize]),
      [
        ['etc/hostname', 'reg', 512, 4],
        ['b', 'reg', 1536, 0],
      ],
    );
    const first = reader.entries[0]!;
    assert.equal(first.mode, 0o4755);
    assert.equal(first.uid, 1000);
    assert.equal(first.gid, 100);
    assert.equal(text(first.uname), 'me');
    assert.equal(text(first.gname), 'staff');
    assert.equal(first.modTime, '2024-01-01T00:00:00Z');
    assert.deepEqual(first.xattrs, []);
    assert.equal(reader.archiveSize, tar.length);
  });

  test('every supported type flag maps to its zTOC type; devices keep major/minor', () => {
    const types = ['0', '1', '2', '3', '4', '5', '6'];
    const tar = concat(...types.map((type) => entry({ name: `n${type}`, type, linkname: 'target', devmajor: 8, devminor: 1 })), END);
    const entries = readTar(tar).entries;
    assert.deepEqual(
      entries.map((e) => e.type),
      ['reg', 'hardlink', 'symlink', 'char', 'block', 'dir', 'fifo'],
    );
    assert.deepEqual(
      entries.map((e) => [e.devmajor, e.devminor, text(e.linkname)]),
      types.map(() => [8, 1, 'target']),
    );
  });

  test('USTAR joins prefix and name; GNU headers have no prefix; STAR has a shorter one', () => {
    const entries = readTar(
      concat(
        entry({ name: 'name.txt', prefix: 'a/very/long/prefix' }, 'x'),
        entry({ name: 'gnu.txt', format: 'gnu', patch: [[345, '\0'.repeat(24)]] }, 'y'),
        entry({ name: 'star.txt', format: 'star', prefix: 'star/dir' }, 'z'),
        END,
      ),
    ).entries;
    assert.deepEqual(
      entries.map((e) => text(e.name)),
      ['a/very/long/prefix/name.txt', 'gnu.txt', 'star/dir/star.txt'],
    );
  });

  test('GNU header with unparsable atime/ctime falls back to an ASCII prefix (pre-Go-1.8 writers)', () => {
    const buggy = entry({ name: 'file', format: 'gnu', patch: [[345, 'old/go/prefix\0']] }, 'x');
    assert.equal(text(only(readTar(concat(buggy, END))).name), 'old/go/prefix/file');
    const nonAscii = entry({ name: 'file', format: 'gnu', patch: [[345, 'pr\xe9fix\0']] }, 'x');
    assert.equal(text(only(readTar(concat(nonAscii, END))).name), 'file');
  });

  test('V7 headers: no owner names, no device numbers', () => {
    const e = only(readTar(concat(entry({ name: 'old', format: 'v7', devmajor: 3 }, 'abc'), END)));
    assert.equal(text(e.uname), '');
    assert.equal(text(e.gname), '');
    assert.equal(e.devmajor, 0);
    assert.equal(e.type, 'reg');
  });

  test("old-style type '\\0': a trailing slash makes a directory whose size is not skipped", () => {
    const tar = concat(header({ name: 'legacy-dir/', type: '\0', size: 700 }), entry({ name: 'legacy-file', type: '\0' }, 'data'), END);
    const entries = readTar(tar).entries;
    assert.deepEqual(
      entries.map((e) => [text(e.name), e.type, e.uncompressedOffset, e.uncompressedSize]),
      [
        ['legacy-dir/', 'dir', 512, 700],
        ['legacy-file', 'reg', 1024, 4],
      ],
    );
  });

  test('header-only types record their size field but own no data', () => {
    const tar = concat(header({ name: 'link', type: '2', linkname: 't', size: 1000 }), entry({ name: 'next' }, 'q'), END);
    const entries = readTar(tar).entries;
    assert.deepEqual(
      entries.map((e) => [e.uncompressedOffset, e.uncompressedSize]),
      [
        [512, 1000],
        [1024, 1],
      ],
    );
  });

  test('numeric fields: base-256 values, octal with spaces and NULs, uid/gid truncated to uint32', () => {
    const e = only(
      readTar(
        concat(
          header({
            name: 'big',
            patch: [
              [124, base256(5n, 12)],
              [108, base256(5_000_000_000n, 8)],
              [116, base256(-2n, 8)],
              [136, base256(-100n, 12)],
              [100, ' 755 \0\0\0'],
            ],
          }),
          bytes('hello'),
          padding(5),
          END,
        ),
      ),
    );
    assert.equal(e.uncompressedSize, 5);
    assert.equal(e.uid, 5_000_000_000 % 2 ** 32);
    assert.equal(e.gid, 2 ** 32 - 2);
    assert.equal(e.modTime, '1969-12-31T23:58:20Z');
    assert.equal(e.mode, 0o755);
  });

  test('names and link names are raw bytes, never normalised', () => {
    const name = new Uint8Array([0x2e, 0x2f, 0x2f, 0xff, 0xfe, 0x2f]); // "./" "/" invalid UTF-8 "/"
    const e = only(readTar(concat(header({ name, type: '5', linkname: new Uint8Array([0x80, 0x41]) }), END)));
    assert.deepEqual(e.name, name);
    assert.deepEqual(e.linkname, new Uint8Array([0x80, 0x41]));
  });
});

// ---- PAX and GNU extensions ----

describe('GoTarReader PAX records', () => {
  test('overrides path, linkpath, owner, ids, size and mtime; all records become sorted xattrs', () => {
    const capability = new Uint8Array([1, 0, 0, 2, 0, 0x20, 0, 0, 0xff, 0]);
    const tar = concat(
      pax([
        ['path', 'very/long/name'],
        ['linkpath', 'long/target'],
        ['uname', 'alice'],
        ['gname', 'staff'],
        ['uid', '3000000'],
        ['gid', '+7'],
        ['mtime', '1714979289.123456789'],
        ['atime', '1.5'],
        ['SCHILY.xattr.security.capability', capability],
        ['Zed', 'upper case sorts first'],
        ['comment', ''],
      ]),
      header({ name: 'short', type: '2', linkname: 'short-target', uid: 1, gid: 2 }),
      END,
    );
    const e = only(readTar(tar));
    assert.equal(text(e.name), 'very/long/name');
    assert.equal(text(e.linkname), 'long/target');
    assert.equal(text(e.uname), 'alice');
    assert.equal(text(e.gname), 'staff');
    assert.equal(e.uid, 3000000);
    assert.equal(e.gid, 7);
    assert.equal(e.modTime, '2024-05-06T07:08:09.123456789Z');
    assert.equal(e.uncompressedOffset, 1536); // x header, its one-block body, the entry's header
    assert.deepEqual(
      e.xattrs.map((x) => text(x.key)),
      ['SCHILY.xattr.security.capability', 'Zed', 'atime', 'comment', 'gid', 'gname', 'linkpath', 'mtime', 'path', 'uid', 'uname'],
    );
    assert.deepEqual(e.xattrs[0]!.value, capability);
  });

  test('PAX size replaces the header size and decides how much data is skipped', () => {
    const tar = concat(pax([['size', '600']]), header({ name: 'f', size: 3 }), new Uint8Array(1024), entry({ name: 'g' }, 'x'), END);
    const entries = readTar(tar).entries;
    assert.deepEqual(
      entries.map((e) => [text(e.name), e.uncompressedOffset, e.uncompressedSize]),
      [
        ['f', 1536, 600],
        ['g', 3072, 1],
      ],
    );
  });

  test('empty values keep the header field but are still listed', () => {
    const e = only(
      readTar(
        concat(
          pax([
            ['path', ''],
            ['uid', ''],
          ]),
          entry({ name: 'kept', uid: 42 }, 'a'),
          END,
        ),
      ),
    );
    assert.equal(text(e.name), 'kept');
    assert.equal(e.uid, 42);
    assert.deepEqual(
      e.xattrs.map((x) => [text(x.key), text(x.value)]),
      [
        ['path', ''],
        ['uid', ''],
      ],
    );
  });

  test('of consecutive x headers only the last applies; a duplicate key keeps its last value', () => {
    const tar = concat(
      pax([['path', 'lost']]),
      pax([
        ['mtime', '5'],
        ['mtime', '7'],
      ]),
      entry({ name: 'f' }, 'a'),
      END,
    );
    const e = only(readTar(tar));
    assert.equal(text(e.name), 'f');
    assert.equal(e.modTime, '1970-01-01T00:00:07Z');
    assert.deepEqual(
      e.xattrs.map((x) => text(x.key)),
      ['mtime'],
    );
  });

  test('records apply only to the next entry', () => {
    const entries = readTar(concat(pax([['path', 'renamed']]), entry({ name: 'a' }), entry({ name: 'b' }), END)).entries;
    assert.deepEqual(
      entries.map((e) => [text(e.name), e.xattrs.length]),
      [
        ['renamed', 1],
        ['b', 0],
      ],
    );
  });

  test('mtime fractions are padded/truncated to nanoseconds and negative times carry the sign', () => {
    const cases: [string, string][] = [
      ['1.5', '1970-01-01T00:00:01.5Z'],
      ['-1.5', '1969-12-31T23:59:58.5Z'],
      ['-0.25', '1969-12-31T23:59:59.75Z'],
      ['1.1234567891', '1970-01-01T00:00:01.123456789Z'],
      ['1.', '1970-01-01T00:00:01Z'],
      ['+3', '1970-01-01T00:00:03Z'],
      ['-315619200', '1960-01-01T00:00:00Z'],
      ['253402300799.999999999', '9999-12-31T23:59:59.999999999Z'],
      ['253402300800', ''],
      ['-62167219200', '0000-01-01T00:00:00Z'],
      ['-62167219201', ''],
      ['9223372036854775807', ''],
    ];
    for (const [mtime, expected] of cases) {
      const e = only(readTar(concat(pax([['mtime', mtime]]), entry({ name: 'f' }, 'x'), END)));
      assert.equal(e.modTime, expected, `mtime=${mtime}`);
    }
  });

  test('invalid numeric values and malformed records are bad tar', () => {
    const bad: Uint8Array[] = [
      pax([['mtime', '1e3']]),
      pax([['mtime', '.5']]),
      pax([['mtime', '1.2.3']]),
      pax([['uid', '0x10']]),
      pax([['gid', '18446744073709551616']]),
      pax([['size', '-1']]),
      pax([['path', 'with\0nul']]),
      pax([['', 'empty key']]),
      pax(bytes('6 a=b\nx')), // trailing bytes that are no record
      pax(bytes('7 a=b\n')), // length beyond the body
      pax(bytes('6 ab\n\n')), // no '='
      pax(bytes('4 a\n')), // length below 5
    ];
    for (const headerBlocks of bad) {
      const error = tarError(concat(headerBlocks, entry({ name: 'f' }, 'x'), END));
      assert.equal(error.code, 'bad-tar', error.message);
    }
  });

  test('a length field with a sign or leading zeros is accepted, as Go parses it', () => {
    const e = only(readTar(concat(pax(bytes('+7 a=b\n07 c=d\n')), entry({ name: 'f' }), END)));
    assert.deepEqual(
      e.xattrs.map((x) => [text(x.key), text(x.value)]),
      [
        ['a', 'b'],
        ['c', 'd'],
      ],
    );
  });

  test('an x header with no entry after it is ignored at end of archive', () => {
    const reader = readTar(concat(entry({ name: 'f' }, 'x'), pax([['path', 'p']]), END));
    assert.equal(text(only(reader).name), 'f');
    assert.equal(reader.archiveSize, 3072);
  });

  test('bodies over the special-file limit are rejected', () => {
    const tooBig = new Uint8Array((1 << 20) + 1);
    assert.equal(tarError(concat(pax(tooBig), END)).code, 'limit-exceeded');
    assert.equal(tarError(concat(gnuLong('L', tooBig), END)).code, 'limit-exceeded');

    const small = new GoTarReader({ maxSpecialBodySize: 10 });
    assert.throws(() => small.push(concat(pax([['path', 'longer than ten']]), END)), { code: 'limit-exceeded' });
  });

  test('a body of exactly 1 MiB is accepted', () => {
    const name = 'n'.repeat(1 << 20);
    const e = only(readTar(concat(gnuLong('L', name), entry({ name: 'short', format: 'gnu' }), END)));
    assert.equal(e.name.length, 1 << 20);
  });
});

describe('GoTarReader GNU long names', () => {
  test('L and K set name and link name, NUL-terminated, after PAX overrides', () => {
    const tar = concat(
      pax([['path', 'pax-name']]),
      gnuLong('L', `${'dir/'.repeat(40)}file\0garbage`),
      gnuLong('K', 'target/'.repeat(30)),
      header({ name: 'short', type: '1', linkname: 'short-link', format: 'gnu' }),
      END,
    );
    const e = only(readTar(tar, () => 100));
    assert.equal(text(e.name), `${'dir/'.repeat(40)}file`);
    assert.equal(text(e.linkname), 'target/'.repeat(30));
    assert.equal(e.type, 'hardlink');
    assert.equal(e.uncompressedOffset, 7 * 512); // x, L and K headers with one-block bodies, then the entry
    assert.deepEqual(
      e.xattrs.map((x) => text(x.key)),
      ['path'],
    );
  });

  test('an empty long name leaves the header name', () => {
    const e = only(readTar(concat(gnuLong('L', '\0ignored'), entry({ name: 'kept', format: 'gnu' }), END)));
    assert.equal(text(e.name), 'kept');
  });
});

// ---- unsupported entries ----

describe('GoTarReader unsupported entries', () => {
  test('a PAX global header is rejected with its offset', () => {
    const error = tarError(concat(entry({ name: 'a' }, 'x'), pax([['comment', 'git archive']], 'g'), entry({ name: 'b' }), END));
    assert.equal(error.code, 'unsupported-tar-entry');
    assert.equal(error.message, "unsupported tar entry type 'g' (PAX global header) at offset 1024");
  });

  for (const [type, label] of [
    ['7', 'contiguous file'],
    ['S', 'GNU sparse'],
    ['V', 'GNU volume header'],
    ['D', 'GNU dump directory'],
    ['A', "'A'"],
  ]) {
    test(`type '${type}' is rejected`, () => {
      const error = tarError(concat(entry({ name: 'x', type, format: 'gnu' }, 'data'), END));
      assert.equal(error.code, 'unsupported-tar-entry');
      assert.ok(error.message.includes(label), error.message);
    });
  }

  test('PAX records that make Go read a GNU sparse file are rejected; unknown sparse versions are plain files', () => {
    const sparseRecords: [string, string][][] = [
      [
        ['GNU.sparse.major', '1'],
        ['GNU.sparse.minor', '0'],
        ['GNU.sparse.name', 'sparse.bin'],
        ['GNU.sparse.realsize', '1048576'],
      ],
      [
        ['GNU.sparse.major', '0'],
        ['GNU.sparse.minor', '1'],
        ['GNU.sparse.map', '0,3'],
      ],
      [
        ['GNU.sparse.numblocks', '1'],
        ['GNU.sparse.offset', '0'],
        ['GNU.sparse.numbytes', '3'],
      ],
    ];
    for (const records of sparseRecords) {
      const error = tarError(concat(pax(records), entry({ name: 'f' }, 'abc'), END));
      assert.equal(error.code, 'unsupported-tar-entry');
      assert.match(error.message, /^unsupported GNU sparse file "f" \(tar header at offset \d+\)$/);
    }
    const plain = only(
      readTar(
        concat(
          pax([
            ['GNU.sparse.major', '2'],
            ['GNU.sparse.minor', '0'],
          ]),
          entry({ name: 'f' }, 'abc'),
          END,
        ),
      ),
    );
    assert.equal(plain.type, 'reg');
    assert.equal(plain.xattrs.length, 2);
  });

  test('GNU tar sparse archives (--format=gnu -S and --format=posix -S) are rejected', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tar-reader-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const fd = openSync(join(dir, 'sparse.bin'), 'w');
    writeSync(fd, 'end', 4 << 20);
    closeSync(fd);
    for (const format of ['--format=gnu', '--format=posix']) {
      const archive = execFileSync('tar', ['-C', dir, '-S', format, '-cf', '-', 'sparse.bin']);
      const error = tarError(new Uint8Array(archive));
      assert.equal(error.code, 'unsupported-tar-entry', `${format}: ${error.message}`);
      // The reason, not the file's name (which says "sparse" too).
      assert.match(error.message, /^unsupported GNU sparse file "[^"]*" \(tar header at offset \d+\)$/);
    }
  });
});

// ---- end of archive and malformed streams ----

describe('GoTarReader end of archive', () => {
  const file = entry({ name: 'a' }, 'hello'); // 1024 bytes: header, 5 data bytes, padding

  test('empty input is an empty archive of size 0', () => {
    const reader = readTar(new Uint8Array(0));
    assert.equal(reader.done, true);
    assert.equal(reader.entries.length, 0);
    assert.equal(reader.archiveSize, 0);
  });

  test('two zero blocks end the archive; trailing bytes are not read', () => {
    const reader = readTar(concat(file, END, bytes('trailing garbage')));
    assert.equal(reader.archiveSize, 2048);
  });

  test('EOF on a header boundary, or after one zero block, is a clean end', () => {
    assert.equal(readTar(file).archiveSize, 1024);
    assert.equal(readTar(concat(file, new Uint8Array(512))).archiveSize, 1536);
  });

  test('EOF inside the padding after the data is a clean end (Go ignores missing padding)', () => {
    const reader = readTar(file.subarray(0, 512 + 100));
    assert.equal(reader.done, true);
    assert.equal(reader.archiveSize, 612);
    assert.equal(reader.entries.length, 1);
  });

  test('EOF inside the data is truncation', () => {
    const error = tarError(file.subarray(0, 512 + 3));
    assert.equal(error.code, 'truncated');
    assert.equal(error.message, 'tar stream ends inside the data of "a" (offset 512, 2 of 5 bytes missing)');
  });

  test('EOF inside a header block, after a zero block, or inside a special body is truncation', () => {
    assert.equal(tarError(file.subarray(0, 100)).code, 'truncated');
    assert.equal(tarError(concat(file, new Uint8Array(700))).code, 'truncated');
    assert.equal(tarError(pax([['path', 'p']]).subarray(0, 520)).code, 'truncated');
  });

  test('a zero block followed by a non-zero block is bad tar', () => {
    const error = tarError(concat(file, new Uint8Array(512), file, END));
    assert.equal(error.code, 'bad-tar');
    assert.equal(error.message, 'a zero block is followed by a non-zero block at offset 1536');
  });

  test('a bad checksum, a corrupt numeric field or non-tar bytes are bad tar', () => {
    assert.equal(tarError(concat(entry({ name: 'a', badChecksum: true }, 'x'), END)).code, 'bad-tar');
    assert.equal(tarError(concat(entry({ name: 'a', patch: [[100, '06 44\0\0\0']] }, 'x'), END)).code, 'bad-tar');
    assert.equal(tarError(concat(entry({ name: 'a', patch: [[124, base256(-5n, 12)]] }), END)).code, 'bad-tar');
    assert.equal(tarError(bytes('{"this is": "not a tar"}'.repeat(40))).code, 'bad-tar');
  });

  test('a checksum computed over signed bytes is accepted, as by Sun tar', () => {
    const block = header({ name: new Uint8Array([0xe9, 0xe9]) });
    block.fill(0x20, 148, 156);
    const signed = block.reduce((total, c) => total + (c < 0x80 ? c : c - 0x100), 0);
    block.set(bytes(`${signed.toString(8).padStart(6, '0')}\0 `), 148);
    assert.deepEqual(only(readTar(concat(block, END))).name, new Uint8Array([0xe9, 0xe9]));
  });

  test('an error is sticky and entries found before it are kept', () => {
    const reader = new GoTarReader();
    reader.push(file);
    assert.throws(() => reader.push(new Uint8Array(512).fill(0x41)), { code: 'bad-tar' });
    assert.throws(() => reader.push(END), { code: 'bad-tar' });
    assert.throws(() => reader.end(), { code: 'bad-tar' });
    assert.equal(reader.entries.length, 1);
    assert.equal(reader.done, false);
  });
});

describe('formatGoTime', () => {
  test('RFC 3339 with trimmed nanoseconds in UTC, empty outside years 0..9999', () => {
    assert.equal(formatGoTime(1714979289, 0), '2024-05-06T07:08:09Z');
    assert.equal(formatGoTime(1714979289n, 123456789), '2024-05-06T07:08:09.123456789Z');
    assert.equal(formatGoTime(0, 100_000_000), '1970-01-01T00:00:00.1Z');
    assert.equal(formatGoTime(0, -1), '1969-12-31T23:59:59.999999999Z');
    assert.equal(formatGoTime(-62135596800, 0), '0001-01-01T00:00:00Z'); // Go's zero time
    assert.equal(formatGoTime(-62167219200n, 0), '0000-01-01T00:00:00Z');
    assert.equal(formatGoTime(-62167219200n, -1), '');
    assert.equal(formatGoTime(253402300800, 0), '');
    assert.equal(formatGoTime(1n << 62n, 0), '');
  });
});
