// Entry of a TOC worker when running from the TypeScript sources (tests, `tsx`): registers tsx in the
// worker, then loads the worker module. Bundles ship a compiled toc-worker.mjs in this place instead.
import { register } from 'tsx/esm/api';

register();
await import('./toc-worker.ts');
