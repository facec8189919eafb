// `ztoc build` on the hostile layers of issue 11, as a user runs it (the real bin script in a child
// process, its peak RSS measured from inside): each either builds within bounded memory or is refused with
// the stable code `limit-exceeded`, one line on stderr, exit 1 and no output file. Memory bounds are
// generous (the point is "bounded", not a benchmark); there are no timing assertions.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import zlib from 'node:zlib';
import { repoRoot } from '../support/golden.ts';
import { emptyMembersLayer, giantBlockLayer, longFnameLayer, longNamesTar, paxRecordsTar } from '../support/hostile-layers.ts';

const BIN = join(repoRoot, 'bin', 'soci-indexer');
const MAX_RSS = pathToFileURL(join(repoRoot, 'test', 'support', 'max-rss.mjs')).href;
/** The bound for every row: 512 MiB of peak RSS. */
const RSS_BOUND_KIB = 512 * 1024;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ztoc-limits-'));
});
after(() => rm(dir, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** Peak RSS of the child, KiB. */
  maxRssKib: number;
  output: string;
}

async function ztocBuild(name: string, layer: Buffer): Promise<Run> {
  const input = join(dir, name);
  const output = `${input}.ztoc`;
  const rssFile = `${input}.rss`;
  writeFileSync(input, layer);
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', MAX_RSS, BIN, 'ztoc', 'build', input, '-o', output],
      { env: { ...process.env, MAX_RSS_FILE: rssFile }, maxBuffer: 1 << 24 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout, stderr, maxRssKib: Number(readFileSync(rssFile, 'utf8')), output });
      },
    );
  });
}

function assertRefused(r: Run, limit: RegExp): void {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /\(limit-exceeded\)/);
  assert.match(lines[0]!, limit);
  assert.equal(existsSync(r.output), false, 'no output file');
}

function assertBounded(r: Run): void {
  assert.ok(r.maxRssKib > 0 && r.maxRssKib < RSS_BOUND_KIB, `peak RSS ${Math.round(r.maxRssKib / 1024)} MiB`);
}

describe('ztoc build on hostile layers', () => {
  test('500,000 empty gzip members then a small tar: refused (a checkpoint each), bounded', async () => {
    const r = await ztocBuild('empty-members.tar.gz', emptyMembersLayer(500_000));
    assertRefused(r, /extraCheckpoints/);
    assertBounded(r);
  });

  test('one fixed-Huffman block holding a 256 MiB file: indexed in bounded memory', async () => {
    const r = await ztocBuild('giant-block.tar.gz', giantBlockLayer(256 << 20));
    assert.equal(r.code, 0, r.stderr);
    assert.ok(existsSync(r.output));
    assertBounded(r);
  });

  test('a gzip header with FNAME set and 64 MiB without a NUL: refused, bounded', async () => {
    const r = await ztocBuild('long-fname.gz', longFnameLayer(64 << 20));
    assertRefused(r, /gzip header .* longer than 1048576 bytes/);
    assertBounded(r);
  });

  test('100 entries, each a PAX header of 30,000 xattr records: refused, bounded', async () => {
    const r = await ztocBuild('pax.tar.gz', zlib.gzipSync(paxRecordsTar(100, 30_000), { level: 1 }));
    assertRefused(r, /more than 10000 records/);
    assertBounded(r);
  });

  test('100 entries named by 1 MiB GNU long names (a 100 MB TOC from 0.1 MB): refused, bounded', async () => {
    const r = await ztocBuild('long-names.tar.gz', zlib.gzipSync(longNamesTar(100)));
    assertRefused(r, /the TOC would exceed .*limit tocBytes/);
    assertBounded(r);
  });
});
