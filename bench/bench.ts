// `npm run bench [-- --layer FILE] [--rounds N] [--soci-rounds N] [--cache-rounds N] [--skip-ztoc] [--skip-soci] [--skip-cache]`:
// speed and memory of the zTOC engine and of a whole image build, as ratios against native baselines
// measured side by side in the same run.
//
// 1. zTOC build of one big gzip layer (default: a tar of /usr/share, gzip -6, made once and cached in
//    $TMPDIR/soci-indexer-bench) against Node's zlib.createGunzip (128 KiB chunks) to nowhere,
//    `gzip -dc > /dev/null`, and a C zlib zran checkpointing pass (bench/zran-anchor.c, when gcc and
//    zlib.h are available). Paired rounds (A B C D, A B C D, ...), medians of per-round ratios.
// 2. `soci-indexer build` of a four-layer image in a real docker-registry on loopback, at concurrency 1
//    and 2 in paired rounds (zTOCs and index pushed under a fresh tag each run): wall time, peak RSS,
//    bytes the registry served per layer, temp files created.
// 3. The zTOC cache: the four-layer image built from scratch with an empty cache, then a second image
//    sharing three of its four layers, in another repository, with the cache (fresh cache per round,
//    at concurrency 1 and 2): wall time and layer bytes read of the second build as a ratio of the first,
//    both outputs checked byte-identical to dry runs without the cache.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { repoRoot } from '../test/support/golden.ts';
import { tarEntry, tarHeaderBlock } from '../test/support/tar-fixtures.ts';

const { values } = parseArgs({
  options: {
    layer: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    'soci-rounds': { type: 'string', default: '5' },
    'skip-soci': { type: 'boolean' },
    'skip-ztoc': { type: 'boolean' },
    'cache-rounds': { type: 'string', default: '3' },
    'skip-cache': { type: 'boolean' },
  },
});
const ROUNDS = Number(values.rounds);
const SOCI_ROUNDS = Number(values['soci-rounds']);
const WORK = join(tmpdir(), 'soci-indexer-bench');
// What users run: the bundle, rebuilt from the current sources first. (Not bin/soci-indexer, which would
// switch to the TypeScript sources through tsx if a source file changed during the run.)
execFileSync(process.execPath, [join(repoRoot, 'scripts', 'build-cli.mjs')], { cwd: repoRoot, stdio: 'inherit' });
const BIN = join(repoRoot, 'dist', 'cli.mjs');

interface Run {
  wallS: number;
  maxRssMiB: number;
}

/** Runs a command under /usr/bin/time, returning wall seconds and peak RSS. */
function measure(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%M', command, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => {
      const wallS = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`${command} ${args.join(' ')} failed (${code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
      const kb = Number(stderr.trim().split('\n').pop());
      resolve({ wallS, maxRssMiB: kb / 1024 });
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function ensureLayer(): Promise<string> {
  if (values.layer) return values.layer;
  await mkdir(WORK, { recursive: true });
  const layer = join(WORK, 'usr-share.tar.gz');
  if (!existsSync(layer)) {
    console.error(`creating ${layer} (tar of /usr/share, gzip -6; once, then cached)…`);
    execFileSync('sh', ['-c', `tar -C / -cf - --exclude=usr/share/package-lists usr/share 2>/dev/null | gzip -6 -n > '${layer}.part' && mv '${layer}.part' '${layer}'`]);
  }
  return layer;
}

function buildAnchor(): string | undefined {
  const out = join(WORK, 'zran-anchor');
  try {
    execFileSync('gcc', ['-O2', '-o', out, join(repoRoot, 'bench', 'zran-anchor.c'), '-lz'], { stdio: 'ignore' });
    return out;
  } catch {
    console.error('note: gcc or zlib.h missing (apt-get install gcc zlib1g-dev): C anchor skipped');
    return undefined;
  }
}

async function ztocBench(): Promise<string[]> {
  execFileSync(process.execPath, [join(repoRoot, 'scripts', 'build-cli.mjs')]);
  const layer = await ensureLayer();
  const size = statSync(layer).size;
  const anchor = buildAnchor();
  const out = join(WORK, 'bench.ztoc');
  const commands: Record<string, [string, string[]]> = {
    'ztoc build (span 4 MiB)': [process.execPath, [BIN, 'ztoc', 'build', layer, '-o', out]],
    'createGunzip 128 KiB': [process.execPath, [join(repoRoot, 'bench', 'gunzip-baseline.mjs'), layer]],
    'gzip -dc': ['sh', ['-c', `gzip -dc '${layer}' > /dev/null`]],
    ...(anchor ? { 'C zlib zran pass': [anchor, [layer, '4194304']] as [string, string[]] } : {}),
  };
  const names = Object.keys(commands);
  const runs = new Map<string, Run[]>(names.map((n) => [n, []]));
  console.error(`zTOC bench: ${(size / 1e6).toFixed(1)} MB layer, ${ROUNDS} paired rounds after a warm-up`);
  for (let round = -1; round < ROUNDS; round++) {
    for (const name of names) {
      const [cmd, args] = commands[name]!;
      const r = await measure(cmd, args);
      if (round >= 0) runs.get(name)!.push(r);
    }
    if (round >= 0) console.error(`  round ${round + 1}: ${names.map((n) => `${n} ${runs.get(n)![round]!.wallS.toFixed(2)} s`).join(', ')}`);
  }
  const ours = runs.get(names[0]!)!;
  const ratio = (name: string) => median(ours.map((r, i) => r.wallS / runs.get(name)![i]!.wallS));
  const lines = [
    `| command | median wall | MB/s (compressed) | peak RSS |`,
    `|---|---:|---:|---:|`,
    ...names.map((n) => {
      const w = median(runs.get(n)!.map((r) => r.wallS));
      return `| ${n} | ${w.toFixed(2)} s | ${(size / 1e6 / w).toFixed(0)} | ${median(runs.get(n)!.map((r) => r.maxRssMiB)).toFixed(0)} MiB |`;
    }),
    '',
    `ztoc build / createGunzip: **${ratio('createGunzip 128 KiB').toFixed(2)}x** (target <= 1.3x)`,
    `ztoc build / gzip -dc: **${ratio('gzip -dc').toFixed(2)}x** (target <= 1.0x)`,
  ];
  if (anchor) {
    const r = ratio('C zlib zran pass');
    lines.push(
      `ztoc build / C zlib zran pass: **${r.toFixed(2)}x**; upstream's builder measured ~3.5x that pass (docs/design.md), so we are ~${(3.5 / r).toFixed(1)}x faster than upstream (target >= 3x)`,
    );
  }
  lines.push(`peak RSS of ztoc build: ${median(ours.map((r) => r.maxRssMiB)).toFixed(0)} MiB (target < 200 MiB plus the zTOC)`);
  return lines;
}

/**
 * Four ~200 MB gzip layers sharing content but not digests: a unique small tar entry, then the big tar.
 * Tag `v1` is that image; tag `v2` (the cache bench) shares its first three layers and has a fifth.
 */
async function fourLayerLayout(base: string): Promise<string> {
  const dir = join(WORK, 'four-layers');
  if (existsSync(join(dir, 'index.json')) && JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')).manifests.length === 2) return dir;
  const { createHash } = await import('node:crypto');
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = async (bytes: Buffer | string, from?: string) => {
    const digest = from ? execFileSync('sha256sum', [from]).toString().split(' ')[0]! : createHash('sha256').update(bytes).digest('hex');
    const path = join(dir, 'blobs', 'sha256', digest);
    if (from) await copyFile(from, path);
    else await writeFile(path, bytes);
    return { digest: `sha256:${digest}`, size: from ? statSync(from).size : Buffer.byteLength(bytes) };
  };
  const layers: Array<{ mediaType: string; digest: string; size: number }> = [];
  for (let i = 0; i < 5; i++) {
    // A gzip member holding one tar entry (no end-of-archive), concatenated with the big layer: a
    // valid multi-member gzip of one tar stream, with its own digest.
    const body = Buffer.from(`layer ${i}\n`);
    const entry = tarEntry(tarHeaderBlock({ name: `bench-layer-${i}.txt`, size: body.length, typeflag: '0' }), body);
    const file = join(WORK, `layer-${i}.tar.gz`);
    await writeFile(file, gzipSync(entry));
    execFileSync('sh', ['-c', `cat '${base}' >> '${file}'`]);
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...(await put(Buffer.alloc(0), file)) });
    await rm(file);
  }
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const configDesc = { mediaType: 'application/vnd.oci.image.config.v1+json', ...(await put(config)) };
  const image = async (ls: typeof layers) => put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDesc, layers: ls })));
  const v1 = await image(layers.slice(0, 4));
  const v2 = await image([...layers.slice(0, 3), layers[4]!]);
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const entry = (m: { digest: string; size: number }, tag: string) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...m, annotations: { 'org.opencontainers.image.ref.name': tag } });
  await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [entry(v1, 'v1'), entry(v2, 'v2')] }));
  return dir;
}

function tempFiles(): Set<string> {
  const names = new Set<string>();
  for (const dir of [tmpdir(), '/var/tmp']) {
    try {
      for (const n of readdirSync(dir)) names.add(join(dir, n));
    } catch {
      /* absent */
    }
  }
  return names;
}

async function sociBench(): Promise<string[]> {
  const { startRegistry } = await import('../test/support/registry.ts');
  const { startFaultProxy } = await import('../test/support/fault-proxy.ts');
  const layer = await ensureLayer();
  const layout = await fourLayerLayout(layer);
  const manifest = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')).manifests[0];
  const layers: Array<{ digest: string; size: number }> = JSON.parse(
    await readFile(join(layout, 'blobs', 'sha256', manifest.digest.slice(7)), 'utf8'),
  ).layers;
  const registry = await startRegistry();
  const proxy = await startFaultProxy({ upstream: registry.host });
  try {
    execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--preserve-digests', `oci:${layout}:v1`, `docker://${registry.host}/bench/app:v1`]);
    // A fresh output tag per run, so that no run finds the previous one's output ("already indexed").
    let run = 0;
    const args = (host: string, concurrency: number) => [BIN, 'build', `${host}/bench/app:v1`, '--concurrency', String(concurrency), '--min-layer-size', '0', '--output-tag', `bench-${Date.now()}-${run++}`, '--json'];
    // Paired rounds (concurrency 1 then 2, straight against the registry): the machine's speed drifts, so
    // each round's ratio compares runs made side by side.
    const timed: Array<{ c1: Run; c2: Run }> = [];
    const before = tempFiles();
    for (let round = 0; round < SOCI_ROUNDS; round++) {
      timed.push({ c1: await measure(process.execPath, args(registry.host, 1)), c2: await measure(process.execPath, args(registry.host, 2)) });
    }
    const leftover = [...tempFiles()].filter((f) => !before.has(f));
    // A run per concurrency through the counting proxy (which costs CPU of its own on this 2-core machine)
    // measures how often each layer was downloaded.
    const served: number[][] = [];
    for (const concurrency of [1, 2]) {
      const servedBefore = layers.map((l) => proxy.bytesServed(`/v2/bench/app/blobs/${l.digest}`));
      await measure(process.execPath, args(proxy.host, concurrency));
      served.push(layers.map((l, i) => (proxy.bytesServed(`/v2/bench/app/blobs/${l.digest}`) - servedBefore[i]!) / l.size));
    }
    const spread = (xs: number[], digits: number, unit = '') => `${median(xs).toFixed(digits)}${unit} (${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)})`;
    const ratios = timed.map((t) => t.c2.wallS / t.c1.wallS);
    const lines = [
      `${SOCI_ROUNDS} paired rounds; medians with the range in brackets.`,
      '',
      '| concurrency | wall | peak RSS | bytes served per layer | temp files left |',
      '|---:|---:|---:|---|---:|',
      ...([1, 2] as const).map((c) => {
        const runs = timed.map((t) => (c === 1 ? t.c1 : t.c2));
        return `| ${c} | ${spread(runs.map((r) => r.wallS), 2, ' s')} | ${spread(runs.map((r) => r.maxRssMiB), 0, ' MiB')} | ${served[c - 1]!.map((x) => `${x.toFixed(2)}x`).join(', ')} | ${leftover.length} |`;
      }),
      '',
      `concurrency 2 / concurrency 1: **${spread(ratios, 2, 'x')}** per round: ${ratios.map((r) => r.toFixed(2)).join(', ')} (target <= 0.65x)`,
      `peak RSS at concurrency 2: **${spread(timed.map((t) => t.c2.maxRssMiB), 0, ' MiB')}** (target <= 300 MB); 4 layers of ${(layers[0]!.size / 1e6).toFixed(0)} MB, zTOCs and index pushed`,
    ];
    return lines;
  } finally {
    await proxy.stop();
    await registry.stop();
  }
}

/** The parts of a `build --json` result the cache bench compares. */
interface BuildJson {
  bytesRead: number;
  output: { digest: string };
  platforms: { indexDigest?: string; layers: { ztoc?: string; ztocDigest?: string; ztocSize?: number }[] }[];
}

/** Runs `build --json` under /usr/bin/time: wall, peak RSS and the result. */
function measuredBuild(args: string[]): Promise<Run & { result: BuildJson }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%M', process.execPath, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => {
      const wallS = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`build ${args.join(' ')} failed (${code}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
      resolve({ wallS, maxRssMiB: Number(stderr.trim().split('\n').pop()) / 1024, result: JSON.parse(stdout) as BuildJson });
    });
  });
}

/** Output digest and per-platform SOCI index digests: equal means byte-identical output. */
const fingerprint = (r: BuildJson) => JSON.stringify([r.output.digest, r.platforms.map((p) => p.indexDigest)]);

async function cacheBench(): Promise<string[]> {
  const { startRegistry } = await import('../test/support/registry.ts');
  const layer = await ensureLayer();
  const layout = await fourLayerLayout(layer);
  const rounds = Number(values['cache-rounds']);
  const registry = await startRegistry();
  try {
    for (const [tag, repo] of [['v1', 'bench/base'], ['v2', 'bench/other']] as const) {
      execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', '--preserve-digests', `oci:${layout}:${tag}`, `docker://${registry.host}/${repo}:${tag}`]);
    }
    let run = 0;
    const build = (ref: string, concurrency: number, extra: string[]) =>
      measuredBuild(['build', `${registry.host}/${ref}`, '--concurrency', String(concurrency), '--min-layer-size', '0', '--output-tag', `bench-${Date.now()}-${run++}`, '--json', ...extra]);
    // What a build without the cache gives (dry runs: everything built, nothing pushed).
    const scratch = { first: fingerprint((await build('bench/base:v1', 2, ['--dry-run'])).result), second: fingerprint((await build('bench/other:v2', 2, ['--dry-run'])).result) };
    const rows: Array<{ concurrency: number; first: Run & { result: BuildJson }; second: Run & { result: BuildJson } }> = [];
    for (let round = 0; round < rounds; round++) {
      for (const concurrency of [1, 2]) {
        const cache = ['--ztoc-cache', `${registry.host}/bench/ztoc-cache-${round}-${concurrency}`];
        const first = await build('bench/base:v1', concurrency, cache);
        const second = await build('bench/other:v2', concurrency, cache);
        if (fingerprint(first.result) !== scratch.first || fingerprint(second.result) !== scratch.second) {
          throw new Error(`round ${round + 1}, concurrency ${concurrency}: output with the cache differs from the output without it`);
        }
        const modes = second.result.platforms[0]!.layers.map((l) => l.ztoc).join(',');
        if (modes !== 'reused,reused,reused,built') throw new Error(`round ${round + 1}: the second build's layers were ${modes}`);
        rows.push({ concurrency, first, second });
        console.error(`  cache round ${round + 1}, concurrency ${concurrency}: ${first.wallS.toFixed(2)} s then ${second.wallS.toFixed(2)} s`);
      }
    }
    const spread = (xs: number[], digits: number, unit = '') => `${median(xs).toFixed(digits)}${unit} (${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)})`;
    const lines = [
      `${rounds} rounds per concurrency, a fresh cache each; medians with the range in brackets. Outputs byte-identical to builds without the cache: yes (every run checked).`,
      '',
      '| concurrency | first build (empty cache) | second build (3 of 4 layers cached) | time ratio | layer bytes read, first / second | bytes ratio | zTOC bytes fetched from the cache |',
      '|---:|---:|---:|---:|---:|---:|---:|',
    ];
    for (const concurrency of [1, 2]) {
      const mine = rows.filter((r) => r.concurrency === concurrency);
      const reusedZtocBytes = mine[0]!.second.result.platforms[0]!.layers.filter((l) => l.ztoc === 'reused').reduce((n, l) => n + (l.ztocSize ?? 0), 0);
      lines.push(
        `| ${concurrency} | ${spread(mine.map((r) => r.first.wallS), 2, ' s')} | ${spread(mine.map((r) => r.second.wallS), 2, ' s')} | **${spread(mine.map((r) => r.second.wallS / r.first.wallS), 2, 'x')}** | ${(mine[0]!.first.result.bytesRead / 1e6).toFixed(0)} MB / ${(mine[0]!.second.result.bytesRead / 1e6).toFixed(0)} MB | **${(mine[0]!.second.result.bytesRead / mine[0]!.first.result.bytesRead).toFixed(2)}x** | ${(reusedZtocBytes / 1e6).toFixed(1)} MB |`,
      );
    }
    lines.push('', `time ratio per round, concurrency 1: ${rows.filter((r) => r.concurrency === 1).map((r) => (r.second.wallS / r.first.wallS).toFixed(2)).join(', ')}; concurrency 2: ${rows.filter((r) => r.concurrency === 2).map((r) => (r.second.wallS / r.first.wallS).toFixed(2)).join(', ')} (goal <= 0.3x time and bytes)`);
    return lines;
  } finally {
    await registry.stop();
  }
}

const report: string[] = [`# bench ${new Date().toISOString()} (node ${process.version}, ${(await import('node:os')).cpus().length} CPUs)`, ''];
if (!values['skip-ztoc']) report.push('## zTOC build of one layer', '', ...(await ztocBench()), '');
if (!values['skip-soci']) report.push('## soci-indexer build, four-layer image in a registry', '', ...(await sociBench()), '');
if (!values['skip-cache']) report.push('## zTOC cache: a second image sharing three of four layers, in another repository', '', ...(await cacheBench()), '');
console.log(report.join('\n'));
