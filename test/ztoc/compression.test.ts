// The compression table drives detection, media-type selection, the builder's dispatch, the codec's enum
// value, checkpoint reading and the verifier: a third algorithm registered here, in this file only, is
// picked up by all of them; removing it again restores the two built-in entries' behaviour.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { findPrefetchSpans } from '../../lambda/soci/prefetch.ts';
import { selectLayer } from '../../lambda/soci/select.ts';
import { buildZtoc, detectFormat } from '../../lambda/ztoc/builder.ts';
import { decodeTarZinfo, encodeTarZinfo, parseZtoc } from '../../lambda/ztoc/codec.ts';
import { type Compression, serializedFrom } from '../../lambda/ztoc/compression/algorithm.ts';
import { compressionForMediaType, compressionNamed, compressions, registerCompression } from '../../lambda/ztoc/compression/table.ts';
import { GoTarReader } from '../../lambda/ztoc/tar-reader.ts';
import { ZtocError } from '../../lambda/ztoc/types.ts';
import { verifyZtoc } from '../../lambda/ztoc/verify/index.ts';
import type { Extraction, Plan } from '../../lambda/ztoc/verify/plan.ts';
import { RangeHasher } from '../../lambda/ztoc/verify/range-hasher.ts';
import { tarEntry, tarHeaderBlock } from '../support/tar-fixtures.ts';

// "test-xor": a 4-byte magic, then every tar byte XORed with KEY. Byte for byte, so uncompressed offset
// u is layer byte MAGIC.length + u, and spans are fixed slices of the layer as for plain tar.
const MAGIC = [0x58, 0x4f, 0x52, 0x21]; // "XOR!"
const KEY = 0x5a;
const ZSTD_LAYER = 'application/vnd.oci.image.layer.v1.tar+zstd';

function xor(bytes: Uint8Array): Uint8Array {
  return bytes.map((b) => b ^ KEY);
}

async function* chunks(bytes: Uint8Array, size = 100): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of stream) parts.push(chunk);
  return Buffer.concat(parts);
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Decodes the layer from `startByte` on and hashes the files' ranges of the tar stream. */
class XorExtraction implements Extraction {
  readonly startByte = MAGIC.length;
  readonly hasher: RangeHasher;
  done = false;
  private readonly end: number;

  constructor(readonly files: Plan['slices']) {
    this.hasher = new RangeHasher(files);
    this.end = Math.max(...files.map((f) => f.end));
  }

  feed(chunk: Uint8Array, chunkPos: number): void {
    const from = Math.max(0, this.startByte - chunkPos);
    if (this.done || from >= chunk.length) return;
    const out = chunkPos + from - this.startByte;
    this.hasher.update(out, xor(chunk.subarray(from)));
    if (out + chunk.length - from >= this.end) this.done = true;
  }

  unfinishedReason(): string {
    return 'the layer ended';
  }
}

const testXor: Compression = {
  name: 'test-xor',
  fbsCode: 100,
  description: 'test-xor',
  magic: { bytes: MAGIC, mismatch: 'bad-tar' },
  // Claims what containerd calls zstd, so selection by media type can be seen to follow the table.
  mediaTypeCompressions: ['zstd'],
  async build(stream, { spanSize, header, tarOptions }) {
    const blob = await collect(stream);
    const tar = new GoTarReader(tarOptions);
    tar.push(xor(blob.subarray(MAGIC.length)));
    tar.end();
    const spanDigests: string[] = [];
    for (let at = 0; at < blob.length; at += spanSize) spanDigests.push(`sha256:${sha256(blob.subarray(at, at + spanSize))}`);
    return serializedFrom({
      ...header,
      toc: tar.toc,
      compressedArchiveSize: blob.length,
      uncompressedArchiveSize: tar.archiveSize,
      maxSpanId: spanDigests.length - 1,
      spanDigests,
      checkpoints: encodeTarZinfo(spanSize, blob.length),
    });
  },
  spanSize: (checkpoints) => decodeTarZinfo(checkpoints).spanSize,
  spanLocator(checkpoints) {
    const { spanSize } = decodeTarZinfo(checkpoints);
    return (offset) => Math.floor((MAGIC.length + offset) / spanSize);
  },
  describeCheckpoints: (checkpoints) => decodeTarZinfo(checkpoints),
  verify: {
    plan(ztoc) {
      const { spanSize, size } = decodeTarZinfo(ztoc.checkpoints);
      const spanRanges = ztoc.spanDigests.map((_, i) => ({ start: i * spanSize, end: Math.min(size, (i + 1) * spanSize) }));
      const files: Plan['slices'] = [];
      const sourceOf = new Map<number, string>();
      ztoc.toc.forEach((m, entry) => {
        if (m.type !== 'reg' || m.uncompressedSize <= 0) return;
        files.push({ entry, start: m.uncompressedOffset, end: m.uncompressedOffset + m.uncompressedSize });
        sourceOf.set(entry, 'the xor stream');
      });
      const extractions = files.length > 0 ? [new XorExtraction(files)] : [];
      return { spanRanges, prefixEnd: MAGIC.length, extractions, slices: [], windowRanges: [], checkpoints: [], sourceOf };
    },
    checkPrefix(prefix, _plan, problems) {
      if (!MAGIC.every((b, i) => prefix[i] === b)) problems.push('test-xor: bad magic');
    },
    async decompress(layer, _problems, sink) {
      const blob = await collect(layer());
      sink(0, xor(blob.subarray(MAGIC.length)));
    },
  },
};

function sampleTar(): Buffer {
  const hello = Buffer.from('hello, table\n');
  const data = Buffer.alloc(3000, 7);
  return Buffer.concat([
    tarEntry(tarHeaderBlock({ name: 'hello.txt', size: hello.length, typeflag: '0' }), hello),
    tarEntry(tarHeaderBlock({ name: 'data.bin', size: data.length, typeflag: '0' }), data),
    Buffer.alloc(1024),
  ]);
}

const xorLayer = (tar: Uint8Array) => Buffer.concat([Buffer.from(MAGIC), xor(tar)]);
const zstdLayer = { mediaType: ZSTD_LAYER, digest: `sha256:${'a'.repeat(64)}`, size: 1 << 20 };

describe('the compression table', () => {
  test('holds gzip and uncompressed, with upstream names, ztoc.fbs enum values and containerd compressions', () => {
    assert.deepEqual(
      compressions().map((c) => [c.name, c.fbsCode, c.mediaTypeCompressions]),
      [
        ['gzip', 1, ['gzip']],
        ['uncompressed', 2, ['uncompressed', 'unknown']],
      ],
    );
    assert.equal(compressionForMediaType('zstd'), undefined);
    assert.throws(
      () => compressionNamed('zstd'),
      (err: unknown) => err instanceof ZtocError && err.code === 'unsupported-compression',
    );
  });

  test('refuses an entry that clashes by name, enum value or as a second magic-less fallback', () => {
    assert.throws(() => registerCompression({ ...testXor, name: 'gzip' }), /clashes with gzip/);
    assert.throws(() => registerCompression({ ...testXor, fbsCode: 2 }), /clashes with uncompressed/);
    const { magic: _magic, ...noMagic } = testXor;
    assert.throws(() => registerCompression(noMagic), /clashes with uncompressed/);
    assert.equal(compressions().length, 2);
  });

  test('a third algorithm registered in one place is detected, selected, built, serialized, located and verified', async () => {
    const tar = sampleTar();
    const layer = xorLayer(tar);
    assert.equal(detectFormat(layer), 'tar-or-unknown');
    assert.deepEqual(selectLayer(zstdLayer, 0, 'img'), {
      action: 'skip',
      code: 'unsupported-format',
      reason: 'zstd layers cannot be indexed',
    });

    const unregister = registerCompression(testXor);
    try {
      assert.equal(detectFormat(layer), 'test-xor');
      assert.deepEqual(selectLayer(zstdLayer, 0, 'img'), { action: 'index', compression: 'test-xor' });

      const outcome = await buildZtoc(chunks(layer), { spanSize: 1024 });
      assert.ok(outcome.indexable, !outcome.indexable ? outcome.reason : '');
      assert.equal(outcome.summary.compression, 'test-xor');
      assert.equal(outcome.summary.spans, Math.ceil(layer.length / 1024));
      const ztoc = parseZtoc(outcome.bytes);
      assert.equal(ztoc.compressionAlgorithm, 'test-xor');
      assert.deepEqual(
        ztoc.toc.map((e) => Buffer.from(e.name).toString()),
        ['hello.txt', 'data.bin'],
      );
      assert.equal(ztoc.uncompressedArchiveSize, tar.length);

      // data.bin's data starts at 1536 in the tar, 1540 in the layer: span 1 at span size 1024.
      assert.deepEqual(findPrefetchSpans(ztoc, ['data.bin']).get('data.bin'), { start: 1, end: 4 });

      const report = await verifyZtoc(() => chunks(layer, 333), ztoc);
      assert.deepEqual(report.problems, []);
      assert.equal(report.filesChecked, 2);
      // The span digests cover the layer bytes; the magic is the fake's prefix check; a wrong offset is
      // seen by its extraction, compared with its own full decompression.
      const damaged = Buffer.from(layer);
      damaged[MAGIC.length + 1536 + 10]! ^= 1;
      damaged[0]! ^= 1;
      const bad = await verifyZtoc(() => chunks(damaged), ztoc);
      assert.deepEqual(
        bad.problems.map((p) => p.replace(/sha256:\w+/g, 'sha256:…')),
        [
          'span 0 digest mismatch: expected sha256:… got sha256:…',
          'span 1 digest mismatch: expected sha256:… got sha256:…',
          'test-xor: bad magic',
        ],
      );
      const moved = { ...ztoc, toc: ztoc.toc.map((e, i) => (i === 1 ? { ...e, uncompressedOffset: e.uncompressedOffset - 512 } : e)) };
      const wrong = await verifyZtoc(() => chunks(layer), moved);
      assert.ok(wrong.problems.includes('file data.bin: content differs when extracted from the xor stream'), wrong.problems.join('\n'));

      const forced = await buildZtoc(chunks(gzipSync(tar)), { compression: 'test-xor' });
      assert.ok(!forced.indexable);
      assert.equal(forced.code, 'bad-tar');
      assert.match(forced.reason, /^not a test-xor stream \(the first bytes are not 58 4f 52 21; detected gzip\)$/);
    } finally {
      unregister();
    }
    assert.equal(detectFormat(layer), 'tar-or-unknown');
    assert.deepEqual(selectLayer(zstdLayer, 0, 'img'), {
      action: 'skip',
      code: 'unsupported-format',
      reason: 'zstd layers cannot be indexed',
    });
    assert.equal(compressions().length, 2);
  });
});
