// Entry of a layer worker when running from the TypeScript sources (tests, `tsx`): registers tsx in the
// worker, then loads the worker module. Bundles ship a compiled layer-worker.mjs in this place instead.
import { register } from 'tsx/esm/api';

register();
await import('./layer-worker.ts');
