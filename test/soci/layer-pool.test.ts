// The worker-thread layer pool: golden bytes through a worker, at most `size` layers read at once, sources
// that fail or are cut short, and a pool that keeps working after a failed job.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { toSociError } from '../../lambda/soci/errors.ts';
import { LayerIndexError, LayerPool } from '../../lambda/soci/layer-pool.ts';
import { chunked } from '../support/bytes.ts';
import { goldenLayer, goldenPath, sha256Hex } from '../support/golden.ts';

const options = {
  spanSize: 65536,
  compression: 'gzip' as const,
  buildToolId: 'AWS SOCI CLI v0.2',
  prefetchPaths: ['etc/hostname'],
  sizeHint: 0,
};

describe('LayerPool', () => {
  const pool = new LayerPool(2);
  after(() => pool.close());
  const layer = readFileSync(goldenLayer('gotar.tar.pigz6.gz').path);

  test('runs on worker threads and gives the golden zTOC, twice in parallel', async () => {
    assert.equal(pool.fallbackReason, undefined, 'workers are available');
    const expected = sha256Hex(readFileSync(goldenPath('ztoc', 'gotar.tar.pigz6.gz.span64k.ztoc')));
    const results = await Promise.all([pool.index(chunked(layer, 65536), options), pool.index(chunked(layer, 100_003), options)]);
    for (const r of results) {
      assert.ok(r.indexable);
      assert.equal(sha256Hex(r.bytes), expected);
      assert.equal(r.summary.digest, `sha256:${expected}`);
    }
  });

  test('at most `size` layers are read at once: the next waits for a worker, then runs', async () => {
    // Each source records that it was started, then holds until released. Calls made in one tick reach
    // their source within microtasks when a worker is free, so by the next macrotask the started ones are known.
    const small = readFileSync(goldenLayer('tiny-gnu.tar.gz').path);
    for (const size of [1, 2]) {
      const bounded = new LayerPool(size);
      try {
        const started: number[] = [];
        const release: (() => void)[] = [];
        const held = (i: number): AsyncIterable<Uint8Array> => {
          const gate = new Promise<void>((resolve) => (release[i] = resolve));
          return (async function* () {
            started.push(i);
            await gate;
            yield* chunked(small, 65536);
          })();
        };
        const runs = [0, 1, 2].map((i) => bounded.index(held(i), options));
        await new Promise((resolve) => setImmediate(resolve));
        assert.deepEqual(started, [0, 1, 2].slice(0, size), `pool of ${size}: ${size} started at once`);
        release[0]!();
        await runs[0];
        await new Promise((resolve) => setImmediate(resolve));
        assert.deepEqual(started, [0, 1, 2].slice(0, size + 1), `pool of ${size}: the next starts when one ends`);
        for (const open of release) open?.();
        for (const r of await Promise.all(runs)) assert.ok(r.indexable, 'each held layer is indexed once released');
      } finally {
        await bounded.close();
      }
    }
  });

  test('a source that fails mid-way rejects with its error, and the pool keeps working', async () => {
    await assert.rejects(pool.index(chunked(layer, 65536, 2_000_000), options), /connection reset/);
    const r = await pool.index(chunked(layer, 65536), options);
    assert.ok(r.indexable);
  });

  test('a layer the worker refuses early stops the reading and closes the source', async () => {
    let closed = false;
    let pulled = 0;
    async function* notTar() {
      try {
        for (;;) {
          pulled++;
          yield Buffer.alloc(1 << 20, 0x41);
        }
      } finally {
        closed = true;
      }
    }
    const r = await pool.index(notTar(), { ...options, compression: 'uncompressed' });
    assert.equal(r.indexable, false);
    assert.ok(closed);
    assert.ok(pulled < 64, `stopped reading early (pulled ${pulled} MiB)`);
  });

  test('node flags a worker refuses (V8 and process-wide ones) do not keep the layers off the workers', () => {
    const probe = fileURLToPath(new URL('../support/layer-pool-probe.ts', import.meta.url));
    const out = execFileSync(process.execPath, ['--max-old-space-size=2048', '--v8-pool-size=2', '--import', 'tsx', probe], {
      encoding: 'utf8',
    });
    const { fallbacks, fallbackReason, digest } = JSON.parse(out) as { fallbacks: string[]; fallbackReason: string | null; digest: string };
    assert.equal(fallbackReason, null);
    assert.deepEqual(fallbacks, []);
    assert.equal(digest, `sha256:${sha256Hex(readFileSync(goldenPath('ztoc', 'gotar.tar.pigz6.gz.span64k.ztoc')))}`);
  });

  test('a worker that runs out of memory fails its layer permanently (LayerIndexError, never retried)', async () => {
    // A heap too small for the worker to load and run the engine: V8 stops it with ERR_WORKER_OUT_OF_MEMORY.
    // Not smaller: on Node 24 a 2 MB heap cannot even deserialize the isolate snapshot, and V8 then aborts
    // the whole process (a fatal OOM, not a worker error). 4-8 MB fail as wanted on Node 20 and 24; 16 does not.
    const starved = new LayerPool(1, undefined, { maxOldGenerationSizeMb: 6, maxYoungGenerationSizeMb: 1 });
    try {
      await assert.rejects(starved.index(chunked(layer, 65536), options), (err: unknown) => {
        assert.ok(err instanceof LayerIndexError, String(err));
        assert.equal(err.transient, false);
        assert.match(err.message, /^layer worker ran out of memory/);
        assert.equal(toSociError(err).kind, 'permanent');
        return true;
      });
    } finally {
      await starved.close();
    }
  });
});
