import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TocTable } from '../../lambda/ztoc/toc-table.ts';
import type { EntryType, FileMetadata } from '../../lambda/ztoc/types.ts';

const bytes = (text: string) => new Uint8Array(Buffer.from(text, 'latin1'));
const TYPES: EntryType[] = ['reg', 'dir', 'symlink', 'hardlink', 'char', 'block', 'fifo'];

function entry(i: number): FileMetadata {
  return {
    name: bytes(`dir-${i % 7}/file-${i}`),
    type: TYPES[i % TYPES.length]!,
    uncompressedOffset: i * 1536 + 2 ** 40,
    uncompressedSize: i % 5 === 0 ? 0 : 2 ** 33 + i,
    linkname: i % 3 === 0 ? bytes(`target-${i}`) : new Uint8Array(0),
    mode: 0o100644 + (i % 8),
    uid: i % 2 === 0 ? 0 : 4294967295,
    gid: 1000 + (i % 3),
    uname: i % 4 === 0 ? new Uint8Array(0) : bytes(i % 2 ? 'root' : 'builder'),
    gname: bytes('staff'),
    modTime: i % 11 === 0 ? '' : `2024-01-0${1 + (i % 9)}T00:00:00.${i}Z`,
    devmajor: i % 13,
    devminor: 2 ** 40 + i,
    xattrs: i % 17 === 0 ? [{ key: bytes('SCHILY.xattr.user.k'), value: new Uint8Array([0, 255, i & 255]) }] : [],
  };
}

describe('TocTable', () => {
  it('gives back every field of every entry, across column blocks and name slabs', () => {
    const table = new TocTable();
    const expected: FileMetadata[] = [];
    for (let i = 0; i < 10_000; i++) {
      const e = entry(i);
      expected.push(structuredClone(e));
      table.push(e);
      e.name.fill(0x21); // the table copied the bytes: the caller may reuse its buffers
    }
    assert.equal(table.length, 10_000);
    assert.deepEqual(table.toArray(), expected);
    assert.deepEqual(table.at(-1), expected[9_999]);
    assert.equal(table.at(10_000), undefined);
    assert.equal(table.at(-10_001), undefined);
  });

  it('keeps names longer than a slab whole, between ordinary ones', () => {
    const table = new TocTable();
    const long = new Uint8Array(3 << 20).map((_, i) => i % 251);
    const entries = [entry(1), { ...entry(2), name: long, linkname: long.subarray(5, 70_000) }, entry(3)];
    for (const e of entries) table.push(e);
    assert.deepEqual(table.toArray(), entries);
  });

  it('counts the bytes of its strings for the serializer estimate', () => {
    const table = new TocTable();
    const e = entry(17); // has a linkname and an xattr
    table.push(e);
    const strings = e.name.length + e.linkname.length + e.uname.length + e.gname.length + e.modTime.length + e.type.length;
    assert.equal(table.totalStringBytes, strings + 32 + e.xattrs[0]!.key.length + e.xattrs[0]!.value.length);
  });
});
