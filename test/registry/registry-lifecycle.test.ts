// The docker-registry a test file starts never outlives it (test/support/registry.ts): a child process
// starts one and then ends without calling stop(): by exiting, by an uncaught error, by SIGINT/SIGTERM
// (the runner stopping a file), or by SIGKILL (the kernel's parent-death signal, setpriv --pdeathsig).
// The registry is found through /proc as the child's child; it must be gone within a generous bound.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const registryModule = fileURLToPath(new URL('../support/registry.ts', import.meta.url));

/** Pids whose parent is `ppid` (field 4 of /proc/<pid>/stat, after the parenthesised command name). */
function childrenOf(ppid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === ppid) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    // A zombie still answers kill(0): only a process that has not exited counts.
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

type Ending = 'exit' | 'uncaught error' | 'SIGINT' | 'SIGTERM' | 'SIGKILL';

/** Starts a registry, says so, and on a line from stdin ends as asked (signals come from the test). */
const CHILD = (ending: Ending) => `
import { startRegistry } from ${JSON.stringify(registryModule)};
await startRegistry();
console.log('ready');
process.stdin.once('data', () => {
  ${ending === 'exit' ? 'process.exit(0);' : "throw new Error('boom');"}
});
`;

describe('a registry started by a test process ends with it', () => {
  for (const ending of ['exit', 'uncaught error', 'SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
    test(ending, async () => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD(ending)], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const ready = new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d;
          if (out.includes('ready')) resolve();
        });
        child.once('exit', (code) => reject(new Error(`the child ended (${code}) before its registry was ready`)));
      });
      let registry: number | undefined;
      try {
        await ready;
        // The registry is docker-registry (setpriv execs it), a child of the test process.
        registry = childrenOf(child.pid!).find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('docker-registry'));
        assert.ok(registry !== undefined && alive(registry), 'the registry runs while its test process does');
        if (ending === 'exit' || ending === 'uncaught error') child.stdin.write('end\n');
        else child.kill(ending);
        let timer: NodeJS.Timeout | undefined;
        const ended = await Promise.race([exited.then(() => true), new Promise<false>((r) => (timer = setTimeout(r, 20_000, false)))]);
        clearTimeout(timer);
        assert.ok(ended, `the test process did not end (${ending})`);
        for (let waited = 0; alive(registry) && waited < 10_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
        assert.equal(alive(registry), false, `docker-registry ${registry} outlived its test process (${ending})`);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        if (registry !== undefined && alive(registry)) process.kill(registry, 'SIGKILL');
      }
    });
  }
});
