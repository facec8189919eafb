#!/usr/bin/env node
// Runs every test/**/*.test.ts file (or the paths given) with Node's own test runner through tsx,
// streams the spec report, and ends with the plain `N passed, N failed, N skipped` line CI reads.
// A time limit per test (`--test-timeout=<ms>`, default 120 s) makes a hung abort path fail by the test's
// name instead of hanging the suite: test/support/test-timeout.mjs gives every test and hook that default
// timeout, on Node 20 (where Node's own --test-timeout bounds each test FILE) as on Node 22+ (where it
// bounds each test). Node's flag is still passed, at 300 s or the per-test bound if larger, as the backstop
// for a file that hangs outside any test; --test-force-exit ends a file whose timed-out test left a handle
// open. SIGINT/SIGTERM are passed on so a stopped run stops its test files.
// test/support/test-report.mjs (preloaded too) keeps that forced exit from dropping verdicts still in a
// file's stdout pipe (nodejs/node#64833) and keeps a ledger of the tests each file started: a run whose
// report holds fewer verdicts than tests were started fails, instead of passing with a smaller count.
// `--unit` runs only the unit tier (scripts/test-tiers.mjs: no registry, no external binary), each file
// under scripts/no-spawn-guard.mjs, and without unpacking the golden fixtures (which need gzip/pigz/zstd).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isUnitTest, spawnPath } from './test-tiers.mjs';

function collect(path, out) {
  if (statSync(path).isDirectory()) {
    for (const name of readdirSync(path).sort()) collect(join(path, name), out);
  } else if (path.endsWith('.test.ts')) {
    out.push(path);
  }
  return out;
}

const DEFAULT_TEST_TIMEOUT_MS = 120_000;
const FILE_TIMEOUT_MS = 300_000;
let testTimeout = DEFAULT_TEST_TIMEOUT_MS;
let unit = false;
const roots = [];
for (const arg of process.argv.slice(2)) {
  const m = /^--test-timeout=(\d+)$/.exec(arg);
  if (m) testTimeout = Number(m[1]);
  else if (arg === '--unit') unit = true;
  else if (arg.startsWith('--')) {
    console.error(`unknown option ${arg} (known: --test-timeout=<ms>, --unit)`);
    process.exit(2);
  } else roots.push(arg);
}
let files = (roots.length ? roots : ['test']).flatMap((root) => collect(root, []));
if (unit) {
  // A file named explicitly must be in the tier; a directory contributes its unit files.
  for (const root of roots.filter((r) => !statSync(r).isDirectory() && !isUnitTest(r))) {
    console.error(
      `${root} is not in the unit tier: it starts processes (${spawnPath(root)
        .map((p) => relative(process.cwd(), p))
        .join(' -> ')} imports node:child_process)`,
    );
    process.exit(2);
  }
  files = files.filter((file) => isUnitTest(file));
}
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
if (!unit) {
  // Unpack the golden fixtures once before the test files start, rather than in two of them at once.
  const golden = spawnSync(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('../test/support/golden-cache.ts', import.meta.url))],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  if (golden.status !== 0) {
    console.error('could not materialize the golden fixtures (test/fixtures/README.md)');
    process.exit(1);
  }
}
const ledgerDir = mkdtempSync(join(tmpdir(), 'soci-indexer-tests-'));
const ledger = join(ledgerDir, 'started');
const guard = unit ? ['--import', fileURLToPath(new URL('./no-spawn-guard.mjs', import.meta.url))] : [];
const child = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    '--import',
    fileURLToPath(new URL('../test/support/test-timeout.mjs', import.meta.url)),
    '--import',
    fileURLToPath(new URL('../test/support/test-report.mjs', import.meta.url)),
    ...guard,
    '--test',
    '--test-force-exit',
    '--test-reporter=spec',
    '--test-concurrency=2',
    `--test-timeout=${Math.max(FILE_TIMEOUT_MS, testTimeout)}`,
    ...files,
  ],
  {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: {
      ...process.env,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      SOCI_TEST_TIMEOUT_MS: String(testTimeout),
      SOCI_TEST_LEDGER: ledger,
    },
  },
);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    child.kill(signal);
    // A runner that ignores the signal would keep the run alive: give it a moment, then end it.
    setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
  });
}
const counts = { pass: 0, fail: 0, skipped: 0, todo: 0, cancelled: 0 };
let tail = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  tail += chunk.toString();
  const lines = tail.split('\n');
  tail = lines.pop() ?? '';
  for (const line of lines) {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the runner's ANSI colour escapes (ESC [ ... m)
    const m = /^\S*\s*(pass|fail|skipped|todo|cancelled) (\d+)$/.exec(line.replace(/\x1b\[[0-9;]*m/g, '').trim());
    if (m) counts[m[1]] = Number(m[2]);
  }
});
child.on('close', (code) => {
  let started = 0;
  try {
    for (const line of readFileSync(ledger, 'utf8').split('\n')) started += Number(line) || 0;
  } catch {
    // no file started a test
  }
  rmSync(ledgerDir, { recursive: true, force: true });
  const failed = counts.fail + counts.cancelled;
  const reported = counts.pass + failed + counts.skipped + counts.todo;
  console.log(`${counts.pass} passed, ${failed} failed, ${counts.skipped + counts.todo} skipped`);
  if (reported < started) {
    console.log(
      `${started - reported} of ${started} started tests have no verdict in the report (lost on the way from their file's process)`,
    );
  }
  process.exit(code === 0 && failed === 0 && reported >= started ? 0 : 1);
});
