// Starts Debian's docker-registry 2.8 on a free loopback port with throw-away storage, optionally behind
// htpasswd basic auth. Each test file starts its own, so files can run in parallel.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
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
    const child = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
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
