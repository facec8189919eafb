// The CLI as a CI job meets it (the real bin script in a child process): it must exit within seconds of
// printing its result even when a throttling front left responses unread, refuse a layout whose layer blob
// is a FIFO instead of hanging, and two CLIs tagging one layout at once must not lose a tag.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm as remove, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { goldenPath, repoRoot } from '../support/golden.ts';
import { buildLayout, pushLayout } from '../support/images.ts';
import { type RunningRegistry, startRegistry } from '../support/registry.ts';

const BIN = join(repoRoot, 'bin', 'soci-indexer');
const PROBE = fileURLToPath(new URL('../support/handle-probe.mjs', import.meta.url));
const TAGGER = fileURLToPath(new URL('../support/layout-tagger.ts', import.meta.url));
/** "A few seconds" after the result: generous for a loaded CI machine, far from "never". */
const EXIT_GRACE_MS = 5000;
/** A child that prints nothing on stdout for this long is hung (the FIFO case on the old code). */
const SILENCE_LIMIT_MS = 60_000;

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hostile-cli-'));
});
after(() => rm(dir, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** ms from the last stdout write to the exit; undefined when the child had to be killed. */
  exitAfterResultMs?: number;
  /** What kept the child alive, from the probe, when it had to be killed. */
  activeResources?: string;
}

/** Runs the CLI; a child still alive EXIT_GRACE_MS after its last output (or silent for SILENCE_LIMIT_MS) is killed and reported. */
function runCli(args: string[]): Promise<Run> {
  const probeFile = join(dir, `probe-${Math.random().toString(36).slice(2)}.json`);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', PROBE, BIN, ...args], {
      env: { ...process.env, HANDLE_PROBE_FILE: probeFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let lastOutput = Date.now();
    let killer: NodeJS.Timeout | undefined;
    let killed = false;
    const arm = (ms: number) => {
      lastOutput = Date.now();
      clearTimeout(killer);
      killer = setTimeout(() => {
        killed = true;
        child.kill('SIGKILL');
      }, ms);
    };
    arm(SILENCE_LIMIT_MS);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d;
      arm(EXIT_GRACE_MS);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('exit', async (code) => {
      clearTimeout(killer);
      const run: Run = { code, stdout, stderr };
      if (killed) run.activeResources = await readFile(probeFile, 'utf8').catch(() => 'no probe output');
      else run.exitAfterResultMs = Date.now() - lastOutput;
      resolve(run);
    });
  });
}

describe('exit after the result', () => {
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  before(async () => {
    registry = await startRegistry();
    const layout = await buildLayout({ layers: [{ compression: 'gzip', files: [{ name: 'big.bin', size: 300_000 }] }], tag: 'v1' });
    await pushLayout(layout, `${registry.host}/test/app:v1`);
    // Idle connections stay open as a real registry keeps them: a response left unread keeps its socket.
    proxy = await startFaultProxy({ upstream: registry.host, keepAliveTimeoutMs: 0 });
  });
  after(async () => {
    await proxy.stop();
    await registry.stop();
  });

  test('a blob HEAD answered 429 + Retry-After: right result, and the CLI exits within seconds', async () => {
    proxy.failNext(429, 1, { method: 'HEAD', path: /\/blobs\//, retryAfter: '1' });
    const run = await runCli(['build', `${proxy.host}/test/app:v1`, '--min-layer-size', '0', '--json']);
    assert.equal(
      run.activeResources,
      undefined,
      `the CLI was still alive ${EXIT_GRACE_MS} ms after its result; active: ${run.activeResources}`,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).status, 'created');
    assert.ok(
      proxy.requests.some((r) => r.method === 'HEAD' && r.status === 429),
      'the throttled HEAD happened',
    );
  });

  test('throttled and failing GETs and PUTs on the way do not keep it alive either', async () => {
    proxy.failNext(429, 1, { method: 'GET', path: /\/manifests\//, retryAfter: '1' });
    proxy.failNext(503, 1, { method: 'GET', path: /\/blobs\// });
    proxy.failNext(503, 1, { method: 'PUT', path: /\/manifests\// });
    const run = await runCli(['build', `${proxy.host}/test/app:v1`, '--min-layer-size', '0', '--output-tag', 'v1-again', '--json']);
    assert.equal(run.activeResources, undefined, `still alive after its result; active: ${run.activeResources}`);
    assert.equal(run.code, 0, run.stderr);
  });
});

describe('layout files that are not what they claim', () => {
  test('a layer blob that is a FIFO: one line, exit 1, no hang', async () => {
    const layout = join(dir, 'fifo');
    await cp(goldenPath('image-layout'), layout, { recursive: true });
    execFileSync('chmod', ['-R', 'u+w', layout]);
    const layer = join(layout, 'blobs', 'sha256', 'e2b3933ccdbbf9195269e7365dcf4a65673c1a6e4e2f2a6ade8127d5335ed297');
    await remove(layer);
    execFileSync('mkfifo', [layer]);
    const run = await runCli(['build', `oci:${layout}:golden`, '--min-layer-size', '0']);
    assert.equal(run.activeResources, undefined, `hung; active: ${run.activeResources}`);
    assert.equal(run.stdout, '');
    assert.equal(run.code, 1);
    assert.equal(
      run.stderr.trim().split('\n').pop(),
      `soci-indexer: error: oci:${layout}: blob sha256:e2b3933ccdbbf9195269e7365dcf4a65673c1a6e4e2f2a6ade8127d5335ed297 is a FIFO, not a regular file; refused`,
    );
  });
});

describe('two processes tagging one layout', () => {
  test('every tag of both survives (index.json updates take turns under the lockfile)', async () => {
    const layout = join(dir, 'tags');
    await cp(goldenPath('image-layout'), layout, { recursive: true });
    execFileSync('chmod', ['-R', 'u+w', layout]);
    const digest = 'sha256:fbf36bc11809c654edf97c6f26cf31969fa65c8dc0402f4f4bb7bdf1a7249964';
    const count = 40;
    const tagger = (prefix: string) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', TAGGER, layout, digest, prefix, String(count)]);
    await Promise.all([tagger('a'), tagger('b')]);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
      manifests: { annotations?: Record<string, string> }[];
    };
    const tags = new Set(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']));
    const missing = ['a', 'b'].flatMap((p) => Array.from({ length: count }, (_, i) => `${p}-${i}`)).filter((t) => !tags.has(t));
    assert.deepEqual(missing, []);
    assert.ok(tags.has('golden'));
    await assert.rejects(readFile(join(layout, 'index.json.lock')), { code: 'ENOENT' }, 'the lock is released');
  });
});
