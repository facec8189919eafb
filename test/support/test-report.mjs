// Preloaded by scripts/run-tests.mjs (`--import`) into every test file's process: makes sure no test's
// verdict is lost on its way to the runner, and lets the runner prove it.
// Node's runner with process isolation, --test-concurrency > 1 and --test-force-exit can end a file's
// process while the last verdicts are still buffered in its stdout pipe: they are silently dropped, the
// count shrinks and the run stays green (nodejs/node#64833; seen here on Node 24: 710 of 731 tests
// reported, the last 21 of one file gone). Two measures:
// 1. stdout is made blocking, so every report frame is written before the process can exit.
// 2. Each process adds the number of tests it STARTED to the file named by SOCI_TEST_LEDGER when it
//    exits; the runner fails the run if fewer verdicts reached it than tests were started.
import { appendFileSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';

process.stdout._handle?.setBlocking?.(true);

const ledger = process.env.SOCI_TEST_LEDGER;
if (ledger) {
  const require = createRequire(import.meta.url);
  const nodeTest = require('node:test');
  let started = 0;
  /** The test body, counted when it starts; its arity is kept (Node reads it to spot `(t, done)` tests). */
  const counted = (fn) => {
    const body = function (...args) {
      started += 1;
      return fn.apply(this, args);
    };
    Object.defineProperty(body, 'length', { value: fn.length });
    return body;
  };
  const withCount = (original) => {
    const wrapped = function (...args) {
      const fnAt = args.findLastIndex((arg) => typeof arg === 'function');
      if (fnAt >= 0) args[fnAt] = counted(args[fnAt]);
      return original.apply(this, args);
    };
    for (const key of ['skip', 'todo', 'only']) if (original[key]) wrapped[key] = original[key];
    return wrapped;
  };
  for (const name of ['test', 'it']) nodeTest[name] = withCount(nodeTest[name]);
  syncBuiltinESMExports();
  process.on('exit', () => {
    if (started > 0) appendFileSync(ledger, `${started}\n`);
  });
}
