// Small, deterministic OCI image layouts for registry tests: real tar layers (tar-stream) compressed with
// gzip, zstd or not at all, written as an OCI layout in a temp dir and pushed with skopeo.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { sha256Digest as sha256 } from '../../lambda/oci/digest.ts';
import {
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_LAYER,
  MEDIA_TYPE_OCI_LAYER_GZIP,
  MEDIA_TYPE_OCI_LAYER_ZSTD,
  MEDIA_TYPE_OCI_MANIFEST,
} from '../../lambda/oci/media-types.ts';
import type { Descriptor, Platform } from '../../lambda/oci/target.ts';
import { tarBytes } from './bytes.ts';

const run = promisify(execFile);

export type Compression = 'gzip' | 'zstd' | 'uncompressed';

export interface LayerSpec {
  compression: Compression;
  /** Files in the layer; content is derived from `seed` (or the name) so digests are stable. */
  files: { name: string; size: number; seed?: string }[];
}

export interface BuiltManifest {
  manifest: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
}

export interface BuiltLayout {
  dir: string;
  tag: string;
  /** What index.json points at under `tag`: a manifest, or an index for multi-platform layouts. */
  root: Descriptor;
  images: BuiltManifest[];
  /** Every blob and manifest written, by digest. */
  blobs: Map<string, Uint8Array>;
}

const LAYER_MEDIA_TYPES: Record<Compression, string> = {
  gzip: MEDIA_TYPE_OCI_LAYER_GZIP,
  zstd: MEDIA_TYPE_OCI_LAYER_ZSTD,
  uncompressed: MEDIA_TYPE_OCI_LAYER,
};

/** `size` incompressible bytes that depend only on `seed` (SHA-256 in counter mode). */
export function deterministicBytes(seed: string, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let block = 0, at = 0; at < size; block++, at += 32) {
    out.set(
      createHash('sha256')
        .update(`${seed}/${block}`)
        .digest()
        .subarray(0, Math.min(32, size - at)),
      at,
    );
  }
  return out;
}

async function tarOf(files: LayerSpec['files']): Promise<Buffer> {
  const mtime = new Date('2024-01-01T00:00:00Z');
  return tarBytes((archive) => {
    for (const file of files) {
      archive.entry(
        { name: file.name, mode: 0o644, mtime, uid: 0, gid: 0 },
        Buffer.from(deterministicBytes(file.seed ?? file.name, file.size)),
      );
    }
  });
}

function zstd(input: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('zstd', ['-q', '-c', '-3'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`zstd exited ${code}`))));
    child.stdin.end(input);
  });
}

async function compress(tar: Buffer, compression: Compression): Promise<Buffer> {
  if (compression === 'gzip') return gzipSync(tar, { level: 6 });
  if (compression === 'zstd') return zstd(tar);
  return tar;
}

function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

class LayoutWriter {
  readonly blobs = new Map<string, Uint8Array>();

  constructor(readonly dir: string) {}

  async put(mediaType: string, content: Uint8Array, extra: Partial<Descriptor> = {}): Promise<Descriptor> {
    // Plain Uint8Array (not Buffer), so tests can deepEqual it against what a Target returns.
    const bytes = new Uint8Array(content.buffer, content.byteOffset, content.byteLength);
    const digest = sha256(bytes);
    this.blobs.set(digest, bytes);
    await writeFile(join(this.dir, 'blobs', 'sha256', digest.slice(7)), bytes);
    return { mediaType, digest, size: bytes.length, ...extra };
  }

  async image(layers: LayerSpec[], platform: Platform): Promise<BuiltManifest> {
    const layerDescs: Descriptor[] = [];
    const diffIds: string[] = [];
    for (const layer of layers) {
      const tar = await tarOf(layer.files);
      diffIds.push(sha256(tar));
      layerDescs.push(await this.put(LAYER_MEDIA_TYPES[layer.compression], await compress(tar, layer.compression)));
    }
    const config = await this.put(
      MEDIA_TYPE_OCI_CONFIG,
      json({
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant ? { variant: platform.variant } : {}),
        config: {},
        rootfs: { type: 'layers', diff_ids: diffIds },
      }),
    );
    const manifest = await this.put(
      MEDIA_TYPE_OCI_MANIFEST,
      json({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_MANIFEST, config, layers: layerDescs }),
    );
    return { manifest, config, layers: layerDescs };
  }
}

/**
 * Writes an OCI layout holding one image (one platform) or, with several platforms, an image index whose
 * per-platform images share the same layer specs (seeded per platform, so the blobs differ).
 */
export async function buildLayout(options: { layers: LayerSpec[]; platforms?: Platform[]; tag?: string }): Promise<BuiltLayout> {
  const dir = await mkdtemp(join(tmpdir(), 'soci-layout-'));
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  const writer = new LayoutWriter(dir);
  const tag = options.tag ?? 'latest';
  const platforms = options.platforms ?? [{ architecture: 'amd64', os: 'linux' }];
  const images: BuiltManifest[] = [];
  for (const platform of platforms) {
    const suffix = platforms.length > 1 ? `/${platform.os}/${platform.architecture}` : '';
    const layers = options.layers.map((l) => ({ ...l, files: l.files.map((f) => ({ ...f, seed: `${f.seed ?? f.name}${suffix}` })) }));
    images.push(await writer.image(layers, platform));
  }
  const root =
    platforms.length === 1
      ? images[0]!.manifest
      : await writer.put(
          MEDIA_TYPE_OCI_INDEX,
          json({
            schemaVersion: 2,
            mediaType: MEDIA_TYPE_OCI_INDEX,
            manifests: images.map((im, i) => ({ ...im.manifest, platform: platforms[i] })),
          }),
        );
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ ...root, annotations: { 'org.opencontainers.image.ref.name': tag } }] }),
  );
  return { dir, tag, root, images, blobs: writer.blobs };
}

/** Pushes a layout's tag with skopeo (async: a sync child would block in-process test servers). */
export async function pushLayout(
  layout: { dir: string; tag: string },
  destination: string,
  options: { creds?: { username: string; password: string }; format?: 'v2s2' } = {},
): Promise<void> {
  const args = ['copy', '--quiet', '--all', '--dest-tls-verify=false'];
  if (options.creds) args.push('--dest-creds', `${options.creds.username}:${options.creds.password}`);
  // Without --preserve-digests skopeo gzips uncompressed layers on the way to a registry.
  args.push(...(options.format ? ['--format', options.format] : ['--preserve-digests']));
  args.push(`oci:${layout.dir}:${layout.tag}`, `docker://${destination}`);
  await run('skopeo', args, { env: { ...process.env, REGISTRY_AUTH_FILE: join(layout.dir, 'no-auth.json') } });
}
