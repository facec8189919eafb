// The `soci-indexer ztoc` commands as a user runs them (the real bin script in a child process): golden
// output, verify failures, and bad input that must exit non-zero with one line and leave no output file.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { parseZtoc, serializeZtoc } from '../../lambda/ztoc/codec.ts';
import { goldenLayer, goldenPath, sha256Hex } from '../support/golden.ts';
import { runCli } from '../support/run.ts';
import { globalHeaderTar } from '../support/tar-fixtures.ts';

const run = runCli;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ztoc-cli-'));
});
after(() => rm(dir, { recursive: true, force: true }));

const TOOL = ['--build-tool-id', 'AWS SOCI CLI v0.2'];

describe('ztoc build', () => {
  for (const [layer, span, golden] of [
    ['gotar.tar.pigz6.gz', '65536', 'gotar.tar.pigz6.gz.span64k.ztoc'],
    ['gnutar.tar.gzip6-fname.gz', '4194304', 'gnutar.tar.gzip6-fname.gz.span4m.ztoc'],
    ['paxtar.tar', '65536', 'paxtar.tar.span64k.ztoc'],
  ] as const) {
    test(`${layer} at span ${span} equals the golden zTOC`, async () => {
      const out = join(dir, `${golden}`);
      const r = await run(['ztoc', 'build', goldenLayer(layer).path, '--span-size', span, ...TOOL, '-o', out]);
      assert.equal(r.code, 0, r.stderr);
      const expected = sha256Hex(readFileSync(goldenPath('ztoc', golden)));
      assert.equal(sha256Hex(readFileSync(out)), expected);
      assert.equal(r.stdout.trim(), `sha256:${expected} ${readFileSync(out).length}`);
    });
  }

  test('--json prints a summary', async () => {
    const out = join(dir, 'tiny.ztoc');
    const r = await run(['ztoc', 'build', goldenLayer('tiny-gnu.tar.gz').path, '-o', out, '--json', ...TOOL]);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.digest, `sha256:${sha256Hex(readFileSync(goldenPath('ztoc', 'tiny-gnu.tar.gz.span4m.ztoc')))}`);
    assert.equal(summary.compression, 'gzip');
    assert.equal(summary.entries, 1);
    assert.equal(summary.spans, 1);
    assert.equal(summary.compressedSize, 125);
    assert.equal(summary.uncompressedSize, 2048);
  });

  test('--compression uncompressed on a gzip file fails the tar check, no output', async () => {
    const out = join(dir, 'forced.ztoc');
    const r = await run(['ztoc', 'build', goldenLayer('tiny-gnu.tar.gz').path, '--compression', 'uncompressed', '-o', out]);
    assert.equal(r.code, 1);
    assert.equal(existsSync(out), false);
  });

  const bad: Array<[string, () => Buffer, RegExp]> = [
    ['an empty file', () => Buffer.alloc(0), /empty/],
    ['a zstd file', () => readFileSync(goldenLayer('gotar.tar.zst').path), /zstd/],
    ['non-tar content', () => Buffer.from('hello world, not a tar\n'.repeat(100)), /tar/i],
    ['truncated gzip', () => readFileSync(goldenLayer('gotar-mini.tar.gzip6n.gz').path).subarray(0, 100_000), /truncated/],
    [
      'trailing garbage',
      () => Buffer.concat([readFileSync(goldenLayer('tiny-gnu.tar.gz').path), Buffer.from('junk')]),
      /after the gzip stream/,
    ],
    ['a PAX global header', () => zlib.gzipSync(globalHeaderTar()), /global|'g'/],
  ];
  for (const [name, make, pattern] of bad) {
    test(`${name}: exit 1, one line, no output file`, async () => {
      const input = join(dir, `bad-${name.replace(/\W+/g, '-')}`);
      writeFileSync(input, make());
      const out = join(dir, `bad-${name.replace(/\W+/g, '-')}.ztoc`);
      const before = readdirSync(dir).length;
      const r = await run(['ztoc', 'build', input, '-o', out]);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^soci-indexer: error: /);
      assert.match(r.stderr, pattern);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.equal(existsSync(out), false);
      assert.equal(readdirSync(dir).length, before, 'no temp file left behind');
    });
  }

  test('usage errors exit 2', async () => {
    assert.equal((await run(['ztoc', 'build', goldenLayer('tiny-gnu.tar').path])).code, 2);
    assert.equal((await run(['ztoc', 'build', goldenLayer('tiny-gnu.tar').path, '-o', join(dir, 'x'), '--span-size', 'abc'])).code, 2);
    const missing = await run(['ztoc', 'build', join(dir, 'does-not-exist'), '-o', join(dir, 'x')]);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr, `soci-indexer: cannot read layer ${join(dir, 'does-not-exist')}: ENOENT (see --help)\n`);
  });
});

describe('ztoc info', () => {
  test('human summary and JSON', async () => {
    const file = goldenPath('ztoc', 'gotar.tar.gzip6n.gz.span64k.ztoc');
    const human = await run(['ztoc', 'info', file]);
    assert.equal(human.code, 0);
    assert.match(human.stdout, /spans:\s+80/);
    assert.match(human.stdout, /compression:\s+gzip/);
    const json = JSON.parse((await run(['ztoc', 'info', file, '--json'])).stdout);
    assert.equal(json.digest, 'sha256:835108872cf42aacb82cf0242a0a520d7f222e910aae4da4f12ccd9c8c454755');
    assert.equal(json.maxSpanId, 79);
    assert.equal(json.zinfo.checkpoints.length, 80);
    assert.equal(json.zinfo.checkpoints[1].bits, 5);
    assert.equal(json.entries.length, parseZtoc(readFileSync(file)).toc.length);
  });

  test('garbage is one line, exit 1', async () => {
    const file = join(dir, 'garbage.ztoc');
    writeFileSync(file, Buffer.from('not a flatbuffer at all'));
    const r = await run(['ztoc', 'info', file]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});

describe('ztoc verify', () => {
  const layer = goldenLayer('gotar.tar.gzip6n.gz').path;
  const golden = goldenPath('ztoc', 'gotar.tar.gzip6n.gz.span64k.ztoc');

  test('passes on the golden zTOC', async () => {
    const r = await run(['ztoc', 'verify', layer, golden]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^OK: 80 spans verified, \d+ regular files extracted/);
  });

  test('passes on an uncompressed layer', async () => {
    const r = await run(['ztoc', 'verify', goldenLayer('paxtar.tar').path, goldenPath('ztoc', 'paxtar.tar.span4m.ztoc')]);
    assert.equal(r.code, 0, r.stdout);
  });

  const tampered: Array<[string, (bytes: Buffer) => Buffer, RegExp]> = [
    [
      'one flipped byte in a window',
      (bytes) => {
        const z = parseZtoc(bytes);
        const blob = Buffer.from(z.checkpoints);
        blob[12 + 32785 * 3 + 17 + 32000]! ^= 0xff; // inside checkpoint 3's window
        return Buffer.from(serializeZtoc({ ...z, checkpoints: blob }));
      },
      /window|checkpoint 3|differs/i,
    ],
    [
      'a wrong span digest',
      (bytes) => {
        const z = parseZtoc(bytes);
        const spanDigests = [...z.spanDigests];
        spanDigests[7] = `sha256:${'0'.repeat(64)}`;
        return Buffer.from(serializeZtoc({ ...z, spanDigests }));
      },
      /span 7/,
    ],
    [
      'a wrong offset',
      (bytes) => {
        const z = parseZtoc(bytes);
        const i = z.toc.findIndex((e) => e.type === 'reg' && e.uncompressedSize > 1000);
        const toc = z.toc.map((e, j) => (j === i ? { ...e, uncompressedOffset: e.uncompressedOffset + 512 } : e));
        return Buffer.from(serializeZtoc({ ...z, toc }));
      },
      /offset|differs/i,
    ],
  ];
  for (const [name, tamper, pattern] of tampered) {
    test(`fails on ${name}`, async () => {
      const file = join(dir, `tampered-${name.replace(/\W+/g, '-')}.ztoc`);
      writeFileSync(file, tamper(readFileSync(golden)));
      const r = await run(['ztoc', 'verify', layer, file]);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /^FAIL: /m);
      assert.match(r.stdout, pattern);
    });
  }
});
