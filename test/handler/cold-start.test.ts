// A malformed configuration value must fail the cold start: one structured log line naming the variable,
// then an exception while the module loads (Lambda's init error). Run in a child process, as Lambda's
// runtime loads the module, with Powertools writing to stdout exactly as in production.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { repoRoot } from '../support/golden.ts';

const run = promisify(execFile);

async function load(env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(SOCI_|POWERTOOLS_)/.test(k)));
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', "await import('./lambda/handler.ts')"],
      {
        cwd: repoRoot,
        env: { ...clean, AWS_REGION: 'eu-west-1', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
      },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('a malformed value fails the module load with one log line naming the variable', async () => {
  for (const [variable, value, reason] of [
    ['SOCI_SPAN_SIZE', '4MiB', 'expected a whole number of bytes, got "4MiB"'],
    ['SOCI_INDEX_VERSION', 'v3', 'expected v2 or v1, got "v3"'],
    ['SOCI_REPOSITORY_FILTERS', 'Bad:Pattern:x', `"Bad:Pattern:x" has more than one ':'`],
  ] as const) {
    const { code, stdout, stderr } = await load({ [variable]: value });
    assert.notEqual(code, 0, `${variable}: the module load must throw`);
    // Powertools writes ERROR lines to stderr (CloudWatch gets both streams); the rest of stderr is the
    // runtime's report of the thrown error, which is not JSON.
    assert.equal(stdout, '');
    const entries = stderr.split('\n').filter((line) => line.startsWith('{'));
    assert.equal(entries.length, 1, stderr);
    const entry = JSON.parse(entries[0]!) as Record<string, unknown>;
    assert.equal(entry.level, 'ERROR');
    assert.equal(entry.variable, variable);
    assert.equal(entry.message, `invalid configuration: ${variable}: ${reason}`);
    assert.match(stderr, /ConfigError/);
  }
});

test('a valid configuration loads silently', async () => {
  const { code, stdout, stderr } = await load({ SOCI_REPOSITORY_FILTERS: 'team/*', SOCI_EVENT_BUS: 'default' });
  assert.equal(code, 0, stderr);
  assert.equal(stdout, '');
  assert.equal(stderr, '');
});
