// Preloaded by scripts/run-tests.mjs (`--import`) into every test file's process: makes sure no test's
// verdict is lost on its way to the runner, and lets the runner prove it.
// Node's runner with process isolation, --test-concurrency > 1 and --test-force-exit can end a file's
// process while the last verdicts are still buffered in its stdout pipe: they are silently dropped, the
// count shrinks and the run stays green (nodejs/node#64833; seen here on Node 24: 710 of 731 tests
// reported, the last 21 of one file gone). Two measures:
// 1. stdout is made blocking, so every report frame is written before the process can exit.
// 2. Each process adds the number of tests it STARTED to the file named by SOCI_TEST_LEDGER when it
//    exits; the runner fails the run if fewer verdicts reached it than tests were started.
// 3. A failing `assert.ok(value)` with no message gets one. Node then builds the message from the source
//    of the call, which under the tsx loader can take minutes of synchronous work in a long test file
//    (nodejs/node#52962, #52677): the per-test timeout cannot fire and the failure is reported, by the
//    file's timeout, without its name. The stack still points at the failing line.
import { appendFileSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { inspect } from 'node:util';
import { rewriteTestArguments } from './patch-node-test.mjs';

process.stdout._handle?.setBlocking?.(true);

const require = createRequire(import.meta.url);
for (const id of ['node:assert', 'node:assert/strict']) {
  const assert = require(id);
  const ok = assert.ok;
  assert.ok = function okWithMessage(value, ...rest) {
    return ok.call(this, value, ...(rest.length === 0 && !value ? [`expected a truthy value, got ${inspect(value)}`] : rest));
  };
}
syncBuiltinESMExports();

const ledger = process.env.SOCI_TEST_LEDGER;
if (ledger) {
  let started = 0;
  // The test body is counted when it starts; its arity is kept (Node reads it to spot `(t, done)` tests).
  rewriteTestArguments((args) => {
    const fnAt = args.findLastIndex((arg) => typeof arg === 'function');
    if (fnAt >= 0) {
      const fn = args[fnAt];
      const body = function (...bodyArgs) {
        started += 1;
        return fn.apply(this, bodyArgs);
      };
      Object.defineProperty(body, 'length', { value: fn.length });
      args[fnAt] = body;
    }
    return args;
  });
  process.on('exit', () => {
    if (started > 0) appendFileSync(ledger, `${started}\n`);
  });
}
