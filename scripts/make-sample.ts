// Generates sample/layout: the small, deterministic two-platform OCI image layout that `npm run demo`
// indexes with no registry and no AWS. Run `npm run make-sample` to regenerate; the output is committed
// so a fresh clone can run the demo without this step. Same script, same bytes.
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';

const OUT = join(import.meta.dirname, '..', 'sample', 'layout');
const MTIME = new Date('2026-01-01T00:00:00Z');

/** Deterministic pseudo-random bytes (incompressible, like binaries and compressed assets). */
function noise(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let block = 0, at = 0; at < size; block++, at += 32) {
    createHash('sha256')
      .update(`${seed}/${block}`)
      .digest()
      .copy(out, at, 0, Math.min(32, size - at));
  }
  return out;
}

/** Deterministic text (compressible, like sources, configs and docs). */
function prose(seed: string, size: number): Buffer {
  const words = [
    'container',
    'layer',
    'lazy',
    'load',
    'span',
    'checkpoint',
    'fargate',
    'task',
    'image',
    'index',
    'stream',
    'gzip',
    'tar',
    'digest',
    'registry',
    'the',
    'a',
    'of',
    'to',
    'and',
  ];
  const bytes = noise(seed, size);
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; length < size; i++) {
    const word = words[bytes[i % size]! % words.length]!;
    const sep = i % 13 === 12 ? '.\n' : ' ';
    parts.push(word, sep);
    length += word.length + sep.length;
  }
  return Buffer.from(parts.join('').slice(0, size));
}

type Entry = { name: string; type?: 'file' | 'directory' | 'symlink'; content?: Buffer; linkname?: string; mode?: number };

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const archive = pack();
  const chunks: Buffer[] = [];
  archive.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<Buffer>((resolve, reject) => {
    archive.on('end', () => resolve(Buffer.concat(chunks)));
    archive.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      mtime: MTIME,
      uid: 0,
      gid: 0,
      uname: 'root',
      gname: 'root',
    };
    if (type === 'symlink') archive.entry({ ...header, linkname: e.linkname! });
    else if (type === 'directory') archive.entry(header);
    else archive.entry(header, e.content ?? Buffer.alloc(0));
  }
  archive.finalize();
  return done;
}

const blobs = new Map<string, Buffer>();
function blob(mediaType: string, bytes: Buffer, extra: Record<string, unknown> = {}) {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  blobs.set(digest, bytes);
  return { mediaType, digest, size: bytes.length, ...extra };
}

async function layer(entries: Entry[]) {
  const tar = await tarOf(entries);
  const gz = gzipSync(tar, { level: 6 });
  return {
    desc: blob('application/vnd.oci.image.layer.v1.tar+gzip', gz),
    diffId: `sha256:${createHash('sha256').update(tar).digest('hex')}`,
  };
}

// A base layer shared by both platforms (~2.3 MB compressed), one app layer per platform (~1.3 MB) and a
// tiny config layer (below the demo's 1 MiB minimum, so the demo shows a skipped layer too).
const base = await layer([
  { name: 'usr/', type: 'directory' },
  { name: 'usr/lib/', type: 'directory' },
  ...Array.from({ length: 40 }, (_, i) => ({ name: `usr/lib/libsample${i}.so`, content: noise(`lib${i}`, 40_000 + i * 700) })),
  { name: 'usr/share/', type: 'directory' },
  { name: 'usr/share/doc/', type: 'directory' },
  ...Array.from({ length: 30 }, (_, i) => ({ name: `usr/share/doc/page${i}.txt`, content: prose(`doc${i}`, 20_000 + i * 1000) })),
  { name: 'etc/', type: 'directory' },
  { name: 'etc/hostname', content: Buffer.from('sample\n') },
  { name: 'etc/alternatives', type: 'symlink', linkname: '../usr/lib' },
]);

async function appLayer(arch: string) {
  return layer([
    { name: 'app/', type: 'directory' },
    { name: 'app/bin/', type: 'directory' },
    { name: `app/bin/server`, content: noise(`server-${arch}`, 1_200_000), mode: 0o755 },
    { name: 'app/assets/', type: 'directory' },
    ...Array.from({ length: 12 }, (_, i) => ({ name: `app/assets/model${i}.json`, content: prose(`model-${arch}-${i}`, 30_000) })),
  ]);
}

const settings = await layer([{ name: 'app/config.yaml', content: Buffer.from('listen: 0.0.0.0:8080\nlog: info\n') }]);

const manifests = [];
for (const [architecture, variant] of [
  ['amd64', undefined],
  ['arm64', 'v8'],
] as const) {
  const app = await appLayer(architecture);
  const layers = [base, app, settings];
  const config = Buffer.from(
    JSON.stringify({
      architecture,
      os: 'linux',
      ...(variant ? { variant } : {}),
      config: { Entrypoint: ['/app/bin/server'], WorkingDir: '/app' },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map(() => ({ created: MTIME.toISOString(), created_by: 'scripts/make-sample.ts' })),
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: blob('application/vnd.oci.image.config.v1+json', config),
      layers: layers.map((l) => l.desc),
    }),
  );
  manifests.push(
    blob('application/vnd.oci.image.manifest.v1+json', manifest, {
      platform: { architecture, os: 'linux', ...(variant ? { variant } : {}) },
    }),
  );
}
const imageIndex = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
const root = blob('application/vnd.oci.image.index.v1+json', imageIndex);

await rm(OUT, { recursive: true, force: true });
await mkdir(join(OUT, 'blobs', 'sha256'), { recursive: true });
for (const [digest, bytes] of blobs) await writeFile(join(OUT, 'blobs', 'sha256', digest.slice('sha256:'.length)), bytes);
await writeFile(join(OUT, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
await writeFile(
  join(OUT, 'index.json'),
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ ...root, annotations: { 'org.opencontainers.image.ref.name': 'latest' } }],
  }),
);
let total = 0;
for (const b of blobs.values()) total += b.length;
console.log(`wrote ${OUT}: ${blobs.size} blobs, ${total} bytes, root ${root.digest}`);
