// The one way the test preloads (test-timeout.mjs, test-report.mjs) change node:test: `test` and `it`
// get their arguments rewritten before Node sees them. Patched through the CommonJS exports, then
// syncBuiltinESMExports() updates the named ESM bindings (`import { test } from 'node:test'`) every
// test file uses. `skip`, `todo` and `only` stay Node's own.
import { createRequire, syncBuiltinESMExports } from 'node:module';

const nodeTest = createRequire(import.meta.url)('node:test');

/** Replaces `test` and `it` by functions that pass `rewrite(args)` to the previous ones. */
export function rewriteTestArguments(rewrite) {
  for (const name of ['test', 'it']) {
    const original = nodeTest[name];
    const wrapped = function (...args) {
      return original.apply(this, rewrite(args));
    };
    for (const key of ['skip', 'todo', 'only']) if (original[key]) wrapped[key] = original[key];
    nodeTest[name] = wrapped;
  }
  syncBuiltinESMExports();
}

/** Replaces the named hooks (`before`, `after`, ...) the same way; their options come after the function. */
export function rewriteHookArguments(names, rewrite) {
  for (const name of names) {
    const original = nodeTest[name];
    nodeTest[name] = function (...args) {
      return original.apply(this, rewrite(args));
    };
  }
  syncBuiltinESMExports();
}
