#!/usr/bin/env node
// Runs every test/**/*.test.ts file (or the paths given) with Node's own test runner through tsx,
// streams the spec report, and ends with the plain `N passed, N failed, N skipped` line CI reads.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function collect(path, out) {
  if (statSync(path).isDirectory()) {
    for (const name of readdirSync(path).sort()) collect(join(path, name), out);
  } else if (path.endsWith('.test.ts')) {
    out.push(path);
  }
  return out;
}

const roots = process.argv.slice(2);
const files = (roots.length ? roots : ['test']).flatMap((root) => collect(root, []));
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files],
  { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } },
);
const counts = { pass: 0, fail: 0, skipped: 0, todo: 0, cancelled: 0 };
let tail = '';
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  tail += chunk.toString();
  const lines = tail.split('\n');
  tail = lines.pop() ?? '';
  for (const line of lines) {
    const m = /^\S*\s*(pass|fail|skipped|todo|cancelled) (\d+)$/.exec(line.replace(/\x1b\[[0-9;]*m/g, '').trim());
    if (m) counts[m[1]] = Number(m[2]);
  }
});
child.on('close', (code) => {
  const failed = counts.fail + counts.cancelled;
  console.log(`${counts.pass} passed, ${failed} failed, ${counts.skipped + counts.todo} skipped`);
  process.exit(code === 0 && failed === 0 ? 0 : 1);
});
