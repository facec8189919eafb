// Byte compatibility with soci-snapshotter: every golden zTOC is rebuilt from its layer and must have the
// same sha256. Plus the layers the builder must refuse, each with a typed one-line reason.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import zlib from 'node:zlib';
import { pack } from 'tar-stream';
import { buildZtoc, detectFormat } from '../../lambda/ztoc/builder.ts';
import { UPSTREAM_BUILD_TOOL_ID } from '../../lambda/ztoc/types.ts';
import { chunked } from '../support/bytes.ts';
import { goldenFiles, goldenLayer, goldenPath, sha256Hex } from '../support/golden.ts';
import { globalHeaderTar, tarEntry, tarHeaderBlock } from '../support/tar-fixtures.ts';

const SPANS: Record<string, number> = { span64k: 65536, span4m: 4194304 };

function goldenCases() {
  return goldenFiles('ztoc', '.ztoc')
    .map((file) => /^(.+)\.(span64k|span4m)\.ztoc$/.exec(file))
    .filter((m): m is RegExpExecArray => m !== null)
    .map(([file, layer, span]) => ({ file: file!, layer: goldenLayer(layer!), span: SPANS[span!]! }));
}

describe('golden zTOCs are reproduced byte for byte', () => {
  const cases = goldenCases();
  test('there are 20 of them', () => assert.equal(cases.length, 20));
  for (const c of cases) {
    test(c.file, async () => {
      const expected = sha256Hex(readFileSync(goldenPath('ztoc', c.file)));
      const outcome = await buildZtoc(createReadStream(c.layer.path), { spanSize: c.span, buildToolId: UPSTREAM_BUILD_TOOL_ID });
      assert.ok(outcome.indexable, !outcome.indexable ? outcome.reason : '');
      assert.equal(outcome.summary.digest, `sha256:${expected}`);
      assert.equal(sha256Hex(outcome.bytes), expected);
      assert.equal(outcome.summary.compressedSize, c.layer.size);
    });
  }

  test('the chunking of the input does not matter', async () => {
    const layer = goldenLayer('gotar.tar.pigz6.gz');
    const bytes = readFileSync(layer.path);
    const expected = sha256Hex(readFileSync(goldenPath('ztoc', 'gotar.tar.pigz6.gz.span64k.ztoc')));
    for (const size of [511, 4099, 1 << 20]) {
      const outcome = await buildZtoc(chunked(bytes, size), { spanSize: 65536, buildToolId: UPSTREAM_BUILD_TOOL_ID });
      assert.ok(outcome.indexable);
      assert.equal(sha256Hex(outcome.bytes), expected, `chunk size ${size}`);
    }
  });

  test('the TOC worker (tar, CRC and serialization on a second thread) gives the same bytes and errors', async () => {
    for (const [layer, golden] of [
      ['gotar.tar.pigz6.gz', 'gotar.tar.pigz6.gz.span64k.ztoc'],
      ['gnutar.tar.gzip6-fname.gz', 'gnutar.tar.gzip6-fname.gz.span64k.ztoc'],
    ] as const) {
      const outcome = await buildZtoc(createReadStream(goldenLayer(layer).path), {
        spanSize: 65536,
        buildToolId: UPSTREAM_BUILD_TOOL_ID,
        tocWorker: true,
      });
      assert.ok(outcome.indexable);
      assert.equal(sha256Hex(outcome.bytes), sha256Hex(readFileSync(goldenPath('ztoc', golden))));
      assert.equal(outcome.ztoc.toc.length, outcome.summary.entries);
    }
    const bad = Buffer.from(readFileSync(goldenLayer('gotar-mini.tar.gzip6n.gz').path));
    bad[bad.length - 8]! ^= 1; // CRC-32 of the only member
    const crc = await buildZtoc(chunked(bad, 65536), { tocWorker: true });
    assert.ok(!crc.indexable && crc.code === 'bad-gzip' && /CRC/.test(crc.reason));
    const notTar = await buildZtoc(chunked(zlib.gzipSync(Buffer.from('plain text '.repeat(1000))), 4096), { tocWorker: true });
    assert.ok(!notTar.indexable && notTar.code === 'bad-tar');
  });

  test('the default build tool identifier is ours, and is an option', async () => {
    const layer = goldenLayer('tiny-gnu.tar.gz');
    const ours = await buildZtoc(createReadStream(layer.path));
    assert.ok(ours.indexable);
    assert.match(ours.ztoc.buildToolIdentifier, /^soci-indexer \d/);
    const custom = await buildZtoc(createReadStream(layer.path), { buildToolId: 'my pipeline 1.2' });
    assert.ok(custom.indexable);
    assert.equal(custom.ztoc.buildToolIdentifier, 'my pipeline 1.2');
  });
});

async function tarOf(
  entries: Array<{ name: string; type?: 'file' | 'pax-header' | 'gnu-long-path'; content?: Buffer; pax?: Record<string, string> }>,
): Promise<Buffer> {
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<Buffer>((resolve) => archive.on('end', () => resolve(Buffer.concat(chunks))));
  for (const e of entries)
    archive.entry({ name: e.name, mtime: new Date(0), ...(e.pax ? { pax: e.pax } : {}) }, e.content ?? Buffer.alloc(0));
  archive.finalize();
  return done;
}

describe('layers that cannot be indexed get a typed one-line reason', () => {
  const expectNotIndexable = async (bytes: Uint8Array, code: string, pattern: RegExp, options = {}) => {
    const outcome = await buildZtoc(chunked(bytes, 65536), options);
    assert.equal(outcome.indexable, false);
    if (outcome.indexable) return;
    assert.equal(outcome.code, code, outcome.reason);
    assert.match(outcome.reason, pattern);
    assert.ok(!outcome.reason.includes('\n'));
  };

  test('empty file', () => expectNotIndexable(new Uint8Array(0), 'empty', /empty/));
  test('a refused layer releases its source (the stream is closed, not left open)', async () => {
    for (const first of [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0]), Buffer.from('not a tar '.repeat(100))]) {
      let closed = false;
      async function* source() {
        try {
          yield first;
          for (;;) yield Buffer.alloc(65536);
        } finally {
          closed = true;
        }
      }
      const outcome = await buildZtoc(source());
      assert.equal(outcome.indexable, false);
      assert.ok(closed);
    }
  });
  test('zstd', () => {
    const zst = execFileSync('zstd', ['-q', '-c'], { input: Buffer.alloc(100_000, 7) });
    assert.equal(detectFormat(zst), 'zstd');
    return expectNotIndexable(zst, 'unsupported-compression', /zstd/);
  });
  test('bzip2 and xz are recognised too', () => {
    assert.equal(detectFormat(Buffer.from('BZh91AY&SY')), 'bzip2');
    assert.equal(detectFormat(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])), 'xz');
  });
  test('not a tar', () =>
    expectNotIndexable(Buffer.from('{"hello": "this is JSON, not a tar archive"}'.repeat(40)), 'bad-tar', /tar|header|checksum/i));
  test('gzip of something that is not a tar', () =>
    expectNotIndexable(zlib.gzipSync(Buffer.from('plain text '.repeat(1000))), 'bad-tar', /tar|header|checksum/i));
  test('--compression gzip on a plain tar', async () =>
    expectNotIndexable(await tarOf([{ name: 'a', content: Buffer.from('x') }]), 'bad-gzip', /not a gzip/, { compression: 'gzip' }));
  test('truncated gzip', () => {
    const gz = zlib.gzipSync(readFileSync(goldenLayer('gotar-mini.tar').path));
    return expectNotIndexable(gz.subarray(0, gz.length >> 1), 'truncated', /truncated/);
  });
  test('trailing garbage after the gzip stream', () => {
    const gz = readFileSync(goldenLayer('tiny-gnu.tar.gz').path);
    return expectNotIndexable(Buffer.concat([gz, Buffer.alloc(16)]), 'trailing-garbage', /after the gzip stream/);
  });
  test('a tar with a PAX global header (git archive)', () =>
    expectNotIndexable(zlib.gzipSync(globalHeaderTar()), 'unsupported-tar-entry', /'g'|global/));
  test('a GNU sparse file', { skip: !hasGnuTar() && 'GNU tar not installed' }, () =>
    expectNotIndexable(zlib.gzipSync(sparseTar()), 'unsupported-tar-entry', /sparse/i),
  );
  test('PAX bodies over 1 MiB are rejected like Go does', async () => {
    const tar = await tarOf([{ name: 'f', content: Buffer.from('x'), pax: { comment: 'y'.repeat(1100 * 1024) } }]);
    return expectNotIndexable(tar, 'limit-exceeded', /1 ?MiB|limit|too large/i);
  });
  test('GNU long names over 1 MiB are rejected like Go does', () => {
    const longName = Buffer.alloc(1100 * 1024, 0x61);
    const header = tarHeaderBlock({ name: '././@LongLink', size: longName.length, typeflag: 'L', format: 'gnu' });
    return expectNotIndexable(Buffer.concat([tarEntry(header, longName), Buffer.alloc(1024)]), 'limit-exceeded', /1 ?MiB|limit|too large/i);
  });
});

function hasGnuTar(): boolean {
  try {
    return execFileSync('tar', ['--version']).toString().includes('GNU tar');
  } catch {
    return false;
  }
}

function sparseTar(): Buffer {
  const dir = execFileSync('mktemp', ['-d']).toString().trim();
  execFileSync('truncate', ['-s', '4M', `${dir}/sparse.bin`]);
  execFileSync('sh', ['-c', `printf data | dd of=${dir}/sparse.bin bs=1 seek=2000000 conv=notrunc 2>/dev/null`]);
  const tar = execFileSync('tar', ['--format=gnu', '-S', '-C', dir, '-cf', '-', 'sparse.bin'], { maxBuffer: 1 << 26 });
  execFileSync('rm', ['-rf', dir]);
  return tar;
}
