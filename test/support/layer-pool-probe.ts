// Run as a child process with extra node flags (see layer-pool.test.ts): indexes a golden layer through a
// LayerPool and prints what happened as JSON.
import { readFileSync } from 'node:fs';
import { LayerPool } from '../../lambda/soci/layer-pool.ts';
import { goldenLayer } from './golden.ts';

const fallbacks: string[] = [];
const pool = new LayerPool(1, (reason) => fallbacks.push(reason));
const layer = readFileSync(goldenLayer('gotar.tar.pigz6.gz').path);
const result = await pool.index(
  (async function* () {
    yield layer;
  })(),
  { spanSize: 65536, compression: 'gzip', buildToolId: 'AWS SOCI CLI v0.2', prefetchPaths: [], sizeHint: layer.length },
);
await pool.close();
console.log(
  JSON.stringify({ fallbacks, fallbackReason: pool.fallbackReason ?? null, digest: result.indexable ? result.summary.digest : undefined }),
);
