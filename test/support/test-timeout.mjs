// Preloaded by scripts/run-tests.mjs (`--import`): gives every test and hook a default `timeout`, so one
// hung test fails by its own name within the bound and the rest of its file still runs. Node's own
// `--test-timeout` cannot do that on every supported version: Node 20 applies it to each test FILE (the
// runner's per-file test, the files' own tests never see it), Node 22+ to each test. An explicit
// `{ timeout }` on a test still wins. The bound comes from SOCI_TEST_TIMEOUT_MS (set by the runner).
// node:test is patched as test/support/patch-node-test.mjs says.
import { rewriteHookArguments, rewriteTestArguments } from './patch-node-test.mjs';

const timeout = Number(process.env.SOCI_TEST_TIMEOUT_MS);

if (Number.isFinite(timeout) && timeout > 0) {
  // test(name?, options?, fn?): `timeout` added to the options unless they set one.
  rewriteTestArguments((args) => {
    const optionsAt = args.findIndex((arg) => typeof arg === 'object' && arg !== null);
    if (optionsAt >= 0) args[optionsAt] = { timeout, ...args[optionsAt] };
    else {
      const fnAt = args.findIndex((arg) => typeof arg === 'function');
      args.splice(fnAt >= 0 ? fnAt : args.length, 0, { timeout });
    }
    return args;
  });
  // before(fn, options?) and friends.
  rewriteHookArguments(['before', 'after', 'beforeEach', 'afterEach'], ([fn, options]) => [fn, { timeout, ...options }]);
}
