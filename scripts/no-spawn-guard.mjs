// Loaded (--import) into every test file of the unit tier by scripts/run-tests.mjs --unit: any attempt to
// start a process (a registry, skopeo, gzip, the CLI, …) throws, and the file fails even if the test
// caught that error, because the unit tier is defined as needing none (scripts/test-tiers.mjs).
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';

const attempts = [];
for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
  childProcess[name] = (command) => {
    const what = `${name}(${JSON.stringify(String(command))})`;
    attempts.push(what);
    throw new Error(`unit tier: ${what} refused; a test that starts a process belongs to the integration tier (scripts/test-tiers.mjs)`);
  };
}
syncBuiltinESMExports();
process.on('exit', () => {
  if (attempts.length === 0) return;
  process.stderr.write(`unit tier: this test file tried to start a process: ${attempts.join(', ')}\n`);
  process.exitCode = 1;
});
