// The native-zlib checkpoint engine against an independent reference (pako driven like soci's zran loop)
// on gzip streams made to hit the hard cases: stored blocks after sync/full flushes, empty fixed blocks
// (partial flush), non-byte-aligned Z_BLOCK flushes, tiny blocks, concatenated and empty members, every
// header flag, and native calls capped so that block boundaries hide behind full buffers.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import zlib from 'node:zlib';
import { type GzipIndexOptions, indexGzip } from '../../lambda/ztoc/gzip-index.ts';
import { ZtocError } from '../../lambda/ztoc/types.ts';
import { chunked } from '../support/bytes.ts';
import { referenceCheckpoints } from '../support/zran-reference.ts';

/** Deterministic mixed content: text-like runs and incompressible runs. */
function content(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let at = 0;
  for (let block = 0; at < size; block++) {
    const h = createHash('sha256').update(`${seed}/${block}`).digest();
    const run = 64 + (h[0]! << 4);
    if (h[1]! & 1) out.write('lorem ipsum dolor sit amet '.repeat(Math.ceil(run / 27)).slice(0, Math.min(run, size - at)), at);
    else for (let i = 0; i < run && at + i < size; i++) out[at + i] = h[(i % 30) + 2]!;
    at += run;
  }
  return out;
}

/** A gzip member written through a zlib stream with a flush of `kind` after every write. */
async function flushedGzip(kind: number, writes: Buffer[], options: zlib.ZlibOptions = {}): Promise<Buffer> {
  const gz = zlib.createGzip(options);
  const out: Buffer[] = [];
  gz.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise((resolve) => gz.on('end', resolve));
  for (const w of writes) {
    gz.write(w);
    await new Promise<void>((resolve) => gz.flush(kind, () => resolve()));
  }
  gz.end();
  await ended;
  return Buffer.concat(out);
}

function writesOf(seed: string, count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => content(`${seed}${i}`, 1 + ((i * 2654435761) % 6000)));
}

/** A gzip member with every optional header field (FEXTRA, FNAME, FCOMMENT, FHCRC). */
function gzipWithAllHeaderFields(data: Buffer, extraLength: number): Buffer {
  const extra = Buffer.alloc(extraLength, 0x41);
  const head = Buffer.concat([
    Buffer.from([0x1f, 0x8b, 8, 4 | 8 | 16 | 2, 0, 0, 0, 0, 0, 3]),
    Buffer.from([extraLength & 0xff, extraLength >> 8]),
    extra,
    Buffer.from('layer.tar\0comment\0'),
  ]);
  const hcrc = Buffer.alloc(2);
  hcrc.writeUInt16LE(zlib.crc32(head) & 0xffff);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(zlib.crc32(data) >>> 0, 0);
  trailer.writeUInt32LE(data.length, 4);
  return Buffer.concat([head, hcrc, zlib.deflateRawSync(data), trailer]);
}

function havePigz(): boolean {
  try {
    execFileSync('pigz', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function ourCheckpoints(file: Buffer, span: number, options: Partial<GzipIndexOptions> = {}, chunk = 65536) {
  let out = 0;
  const r = await indexGzip(
    chunked(file, chunk),
    (c) => {
      out += c.length;
    },
    { spanSize: span, ...options },
  );
  assert.equal(r.uncompressedSize, out);
  return r;
}

async function assertSameAsReference(file: Buffer, spans: number[], options: Partial<GzipIndexOptions> = {}, chunk?: number) {
  for (const span of spans) {
    const expected = referenceCheckpoints(file, span);
    const ours = await ourCheckpoints(file, span, options, chunk);
    assert.deepEqual(
      ours.checkpoints.map((c) => ({ in: c.in, out: c.out, bits: c.bits })),
      expected,
      `checkpoints differ at span ${span}`,
    );
    assert.equal(ours.spanDigests.length, expected.length);
  }
}

const big = content('big', 3_000_000);

describe('gzip checkpoints match the zlib reference', () => {
  test('gzip levels and strategies (dynamic, fixed, huffman-only, rle, stored)', async () => {
    for (const opts of [
      { level: 1 },
      { level: 9 },
      { level: 6, memLevel: 1 },
      { strategy: zlib.constants.Z_FIXED },
      { strategy: zlib.constants.Z_HUFFMAN_ONLY },
      { strategy: zlib.constants.Z_RLE },
      { level: 0 },
    ]) {
      await assertSameAsReference(zlib.gzipSync(big, opts), [65536, 1024]);
    }
  });

  test('flushes: sync and full (empty stored blocks), partial (empty fixed blocks), Z_BLOCK (unaligned)', async () => {
    const { Z_SYNC_FLUSH, Z_FULL_FLUSH, Z_PARTIAL_FLUSH, Z_BLOCK } = zlib.constants;
    for (const kind of [Z_SYNC_FLUSH, Z_FULL_FLUSH, Z_PARTIAL_FLUSH, Z_BLOCK]) {
      const file = await flushedGzip(kind, writesOf(`flush${kind}`, 300));
      await assertSameAsReference(file, [65536, 4096, 1]);
    }
  });

  test('flushes before any data give several checkpoints at output 0', async () => {
    const file = await flushedGzip(zlib.constants.Z_SYNC_FLUSH, [Buffer.alloc(0), Buffer.alloc(0), content('x', 5000)]);
    const r = await ourCheckpoints(file, 1);
    assert.ok(r.checkpoints.filter((c) => c.out === 0).length >= 2);
    await assertSameAsReference(file, [1, 65536]);
  });

  test('concatenated members, with an empty first member and a flush-only member', async () => {
    const file = Buffer.concat([
      zlib.gzipSync(Buffer.alloc(0)),
      zlib.gzipSync(content('m1', 400_000)),
      await flushedGzip(zlib.constants.Z_SYNC_FLUSH, [Buffer.alloc(0)]),
      zlib.gzipSync(content('m2', 700_000), { level: 1 }),
    ]);
    const r = await ourCheckpoints(file, 65536);
    assert.equal(r.members, 4);
    await assertSameAsReference(file, [65536, 1024, 4194304]);
  });

  test('header with FEXTRA (larger than the span), FNAME, FCOMMENT and FHCRC', async () => {
    const file = gzipWithAllHeaderFields(content('hdr', 300_000), 3000);
    const r = await ourCheckpoints(file, 1024);
    assert.equal(r.checkpoints[0]!.in, 10 + 2 + 3000 + 'layer.tar\0comment\0'.length + 2);
    await assertSameAsReference(file, [1024, 65536]);
  });

  test('pigz output with sync-flushed stored blocks between chunks', { skip: !havePigz() && 'pigz not installed' }, async () => {
    for (const args of [['-6', '-b', '32'], ['-6', '-i', '-b', '64'], ['-0'], ['-9', '-R']]) {
      const file = execFileSync('pigz', ['-c', '-n', ...args], { input: big, maxBuffer: 1 << 26 });
      await assertSameAsReference(file, [65536, 4096]);
    }
  });

  test("Go's compress/gzip output (what Docker and BuildKit write): default, sync flushes, Huffman only", async () => {
    const dir = new URL('../fixtures/go-gzip/', import.meta.url);
    for (const name of ['gotar-mini.go-default.gz', 'gotar-mini.go-flush.gz', 'gotar-mini.go-huffman.gz']) {
      const file = readFileSync(new URL(name, dir));
      await assertSameAsReference(file, [65536, 1024]);
    }
  });

  test('boundaries hidden behind exhausted input or full output are still found', async () => {
    // Small writes: with 1-byte calls every return is checked in software, which costs a block decode.
    const writes = Array.from({ length: 60 }, (_, i) => content(`caps${i}`, 1 + ((i * 7919) % 900)));
    const file = await flushedGzip(zlib.constants.Z_SYNC_FLUSH, writes);
    // 1-byte native calls make every boundary arrive as an exhausted-input or full-output return.
    await assertSameAsReference(file, [1, 2048], { maxCallInput: 1, lookahead: 16 }, 7);
    await assertSameAsReference(file, [2048], { maxCallOutput: 1 });
    const medium = zlib.gzipSync(content('medium', 400_000));
    const capped = await ourCheckpoints(medium, 4096, { maxCallInput: 4093, maxCallOutput: 3001 });
    assert.ok(capped.stats.suspects > 0, 'the capped run exercised the hidden-boundary check');
    await assertSameAsReference(medium, [4096], { maxCallInput: 4093, maxCallOutput: 3001 });
  });

  test('a span digest covers the compressed bytes from its checkpoint (minus the shared byte) to the next', async () => {
    const file = zlib.gzipSync(big);
    const { checkpoints: cps, spanDigests } = await ourCheckpoints(file, 65536);
    const { createHash } = await import('node:crypto');
    for (const i of [0, 1, cps.length - 2]) {
      const start = cps[i]!.bits ? cps[i]!.in - 1 : cps[i]!.in;
      assert.equal(
        spanDigests[i],
        `sha256:${createHash('sha256')
          .update(file.subarray(start, cps[i + 1]!.in))
          .digest('hex')}`,
      );
    }
    const last = cps.at(-1)!;
    assert.equal(
      spanDigests.at(-1),
      `sha256:${createHash('sha256')
        .update(file.subarray(last.bits ? last.in - 1 : last.in))
        .digest('hex')}`,
    );
  });

  test('windows are the 32 KiB before each checkpoint, zero-filled at the start', async () => {
    const file = zlib.gzipSync(big);
    const r = await ourCheckpoints(file, 65536);
    for (const cp of r.checkpoints) {
      const from = Math.max(0, cp.out - 32768);
      const expected = Buffer.concat([Buffer.alloc(32768 - (cp.out - from)), big.subarray(from, cp.out)]);
      assert.ok(Buffer.from(cp.window).equals(expected), `window of checkpoint at ${cp.out}`);
    }
  });
});

describe('gzip framing errors', () => {
  const good = zlib.gzipSync(content('err', 200_000));
  const run = (file: Buffer) => indexGzip(chunked(file, 4096), () => {}, { spanSize: 65536 });
  const rejects = (file: Buffer, code: ZtocError['code'], pattern: RegExp) =>
    assert.rejects(
      run(file),
      (err: unknown) => err instanceof ZtocError && err.code === code && pattern.test(err.message) && !err.message.includes('\n'),
    );

  test('truncated stream', () => rejects(good.subarray(0, good.length - 1000), 'truncated', /truncated/));
  test('truncated trailer', () => rejects(good.subarray(0, good.length - 3), 'truncated', /trailer/));
  test('trailing zero bytes, as soci rejects them', () =>
    rejects(Buffer.concat([good, Buffer.alloc(4)]), 'trailing-garbage', /after the gzip stream/));
  test('trailing text', () => rejects(Buffer.concat([good, Buffer.from('garbage')]), 'trailing-garbage', /offset/));
  test('bad CRC', () => {
    const bad = Buffer.from(good);
    bad[bad.length - 8]! ^= 1;
    return rejects(bad, 'bad-gzip', /CRC mismatch/);
  });
  test('corrupt deflate data', () => {
    const bad = Buffer.from(good);
    for (let i = 100; i < 140; i++) bad[i] = 0xff;
    return rejects(bad, 'bad-gzip', /corrupt deflate data|CRC|length/);
  });
  test('bad header flags and method', async () => {
    const flags = Buffer.from(good);
    flags[3] = 0x80;
    const method = Buffer.from(good);
    method[2] = 7;
    await rejects(flags, 'bad-gzip', /reserved/);
    await rejects(method, 'bad-gzip', /method/);
  });
});
