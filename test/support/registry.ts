// Starts Debian's docker-registry 2.8 on a free loopback port with throw-away storage, optionally behind
// htpasswd basic auth. Each test file starts its own, so files can run in parallel.
//
// A registry never outlives the test process that started it: it is stopped by `stop()`, killed on the
// process's `exit` (normal end, uncaught error, the test runner's timeout) and, because the kernel sends it
// SIGKILL when its parent dies (setpriv --pdeathsig), also when the test process itself is killed.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface RunningRegistry {
  /** `127.0.0.1:<port>` */
  host: string;
  /** `http://127.0.0.1:<port>` */
  url: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitReady(url: string, child: ChildProcess): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) return false;
    try {
      const response = await fetch(`${url}/v2/`);
      await response.body?.cancel();
      if (response.status === 200 || response.status === 401) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

const SETPRIV = '/usr/bin/setpriv';
const running = new Map<ChildProcess, string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const [child, dir] of running) {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
  // Without a handler these signals end the process without running 'exit' hooks.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1)));
  }
}

function spawnRegistry(config: string): ChildProcess {
  const registry = ['/usr/bin/docker-registry', 'serve', config];
  const [command, ...args] = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', '--', ...registry] : registry;
  return spawn(command!, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export async function startRegistry(options: { auth?: { username: string; password: string } } = {}): Promise<RunningRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'soci-registry-'));
  let auth = '';
  if (options.auth) {
    const { stdout } = await run('htpasswd', ['-Bbn', options.auth.username, options.auth.password]);
    await writeFile(join(dir, 'htpasswd'), stdout);
    auth = `auth: { htpasswd: { realm: test, path: ${join(dir, 'htpasswd')} } }\n`;
  }
  // The port is free when picked but could be taken before the registry binds it: try a few.
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const config = join(dir, 'config.yml');
    await writeFile(
      config,
      `version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage:
  filesystem: { rootdirectory: ${join(dir, 'data')} }
  delete: { enabled: true }
http: { addr: 127.0.0.1:${port} }
${auth}`,
    );
    installExitHook();
    const child = spawnRegistry(config);
    running.set(child, dir);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    exited.then(() => running.delete(child));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    const url = `http://127.0.0.1:${port}`;
    if (await waitReady(url, child)) {
      return {
        host: `127.0.0.1:${port}`,
        url,
        async stop() {
          if (child.exitCode === null) child.kill('SIGTERM');
          await exited;
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    child.kill('SIGKILL');
    if (attempt === 4) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(`docker-registry did not start: ${stderr.trim().split('\n').pop()}`);
    }
  }
  throw new Error('unreachable');
}
