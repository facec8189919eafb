// The test tiers (scripts/test-tiers.mjs): `npm run test:unit` runs the files that start no process, and
// a unit file that starts one anyway fails. This file itself runs the test runner, so it is not a unit test.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isUnitTest, spawnPath } from '../scripts/test-tiers.mjs';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const runner = join(repoRoot, 'scripts', 'run-tests.mjs');
const scratch = await mkdtemp(join(tmpdir(), 'tiers-test-'));
after(() => rm(scratch, { recursive: true, force: true }));

function runTests(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    // Without the outer run's NODE_TEST_CONTEXT, which would make the inner runner skip its files.
    const { NODE_TEST_CONTEXT: _outer, ...env } = process.env;
    execFile(process.execPath, [runner, ...args], { cwd: repoRoot, env, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: unknown }).code as number) : 0, output: `${stdout}${stderr}` });
    });
  });
}

describe('test tiers', () => {
  test('the unit tier is derived from imports: contract tests on memory and layout are in it, anything reaching a registry, the CLI or the golden unpacking is not', () => {
    const at = (path: string) => join(repoRoot, path);
    assert.equal(isUnitTest(at('test/memory/target-contract.test.ts')), true);
    assert.equal(isUnitTest(at('test/layout/target-contract.test.ts')), true);
    assert.deepEqual(
      spawnPath(at('test/registry/target-contract.test.ts'))?.map((p) => p.slice(repoRoot.length)),
      ['test/registry/target-contract.test.ts', 'test/support/registry.ts'],
    );
    assert.equal(isUnitTest(at('test/cli/ztoc-cli.test.ts')), false);
    assert.equal(isUnitTest(at('test/ztoc/codec.test.ts')), false, 'golden fixtures are unpacked with gzip, pigz and zstd');
    assert.equal(isUnitTest(at('test/tiers.test.ts')), false);
  });

  test('a unit test file that starts a process where the import rule cannot see it fails, even when it catches the refusal', async () => {
    const file = join(scratch, 'sneaky.test.ts');
    await writeFile(
      file,
      `import { test } from 'node:test';
test('starts true', async () => {
  const childProcess = await import(['node', 'child_process'].join(':'));
  try { childProcess.execFileSync('true'); } catch {}
});
`,
    );
    assert.equal(isUnitTest(file), true);
    const unit = await runTests(['--unit', file]);
    assert.equal(unit.code, 1, unit.output);
    assert.match(unit.output, /unit tier: this test file tried to start a process: execFileSync\("true"\)/);
    // The same file passes in the whole suite, where starting processes is allowed.
    const whole = await runTests([file]);
    assert.equal(whole.code, 0, whole.output);
  });

  test('naming a file of the integration tier with --unit is refused, with the import chain that puts it there', async () => {
    const { code, output } = await runTests(['--unit', 'test/registry/target-contract.test.ts']);
    assert.equal(code, 2);
    assert.match(
      output,
      /test\/registry\/target-contract\.test\.ts is not in the unit tier: .*test\/support\/registry\.ts imports node:child_process/,
    );
  });
});
