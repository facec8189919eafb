// Preloaded by scripts/run-tests.mjs (`--import`): gives every test and hook a default `timeout`, so one
// hung test fails by its own name within the bound and the rest of its file still runs. Node's own
// `--test-timeout` cannot do that on every supported version: Node 20 applies it to each test FILE (the
// runner's per-file test, the files' own tests never see it), Node 22+ to each test. An explicit
// `{ timeout }` on a test still wins. The bound comes from SOCI_TEST_TIMEOUT_MS (set by the runner).
// node:test is patched through its CommonJS exports and syncBuiltinESMExports(), which updates the named
// ESM bindings (`import { test } from 'node:test'`) every test file uses.
import { createRequire, syncBuiltinESMExports } from 'node:module';

const require = createRequire(import.meta.url);
const nodeTest = require('node:test');
const timeout = Number(process.env.SOCI_TEST_TIMEOUT_MS);

if (Number.isFinite(timeout) && timeout > 0) {
  /** test(name?, options?, fn?) with `timeout` added to the options unless they set one. */
  const withTimeout = (original) => {
    const wrapped = function (...args) {
      const optionsAt = args.findIndex((arg) => typeof arg === 'object' && arg !== null);
      if (optionsAt >= 0) args[optionsAt] = { timeout, ...args[optionsAt] };
      else {
        const fnAt = args.findIndex((arg) => typeof arg === 'function');
        args.splice(fnAt >= 0 ? fnAt : args.length, 0, { timeout });
      }
      return original.apply(this, args);
    };
    for (const key of ['skip', 'todo', 'only']) if (original[key]) wrapped[key] = original[key];
    return wrapped;
  };
  /** before(fn, options?) and friends: the same for hooks, where options come after the function. */
  const hookWithTimeout = (original) =>
    function (fn, options) {
      return original.call(this, fn, { timeout, ...options });
    };
  for (const name of ['test', 'it']) nodeTest[name] = withTimeout(nodeTest[name]);
  for (const name of ['before', 'after', 'beforeEach', 'afterEach']) nodeTest[name] = hookWithTimeout(nodeTest[name]);
  syncBuiltinESMExports();
}
