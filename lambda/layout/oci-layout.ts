// A local OCI image layout (image-spec image-layout.md) as a Target: `oci-layout`, `index.json` and
// `blobs/sha256/<hex>`. Tags are `org.opencontainers.image.ref.name` annotations on index.json entries.
//
// Choices worth knowing:
// - Only sha256 blobs are supported (the only algorithm soci and ECR use).
// - index.json is re-read on every call (another process may have changed it) and rewritten atomically
//   as compact Go JSON; entries are re-encoded through the image-spec Descriptor type, so fields that
//   type does not know are dropped. Tag updates are serialized within this object and, through the
//   lockfile `index.json.lock`, across processes (two CLIs tagging one layout never lose a tag).
// - Files of the layout are untrusted: a blob must be a regular file (a symlink is followed only when it
//   stays inside the layout) of exactly its descriptor's size; FIFOs and devices are refused without
//   being opened for a blocking read, and index.json and oci-layout are read up to a limit.
// - `referrers` scans the manifests listed in index.json (not blobs reachable only through nested indexes):
//   a v1 SOCI index written to a layout must therefore be tagged to be found.

import { createHash, randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readFile, realpath, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { digestHex, isDigest, verifyBytes, verifyStream } from '../oci/digest.ts';
import { DigestMismatchError, InvalidReferenceError, LimitExceededError, NotFoundError, SociIndexerError } from '../oci/errors.ts';
import { goMarshal, goString, goStruct, goUnmarshal, type Index, marshalIndex, parseIndex, parseManifest } from '../oci/go-json.ts';
import { ANNOTATION_REF_NAME, isIndex, isManifest, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST } from '../oci/media-types.ts';
import { isRefName } from '../oci/reference.ts';
import { checkDescriptorSize, type Descriptor, type FetchOptions, type Target } from '../oci/target.ts';

export const IMAGE_LAYOUT_VERSION = '1.0.0';

/** Registries refuse manifests above 4 MiB; a larger blob resolved by digest is not a manifest. */
const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;
const READ_CHUNK = 1024 * 1024;
/** index.json beyond this is refused (about 60,000 entries); oci-layout is one short field. */
const MAX_INDEX_JSON_BYTES = 16 * 1024 * 1024;
const MAX_LAYOUT_FILE_BYTES = 4096;
/** A lock older than this whose holder cannot be checked (another host) is taken over. */
const STALE_LOCK_MS = 60_000;
/** How long tag() waits for another process's lock before failing. */
const LOCK_WAIT_MS = 30_000;
/** Opened without following a final symlink and without blocking on a FIFO. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** A directory that is not a usable OCI image layout, or an index.json that cannot answer the question. */
export class LayoutError extends SociIndexerError {
  override readonly name = 'LayoutError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('permanent', message, options);
  }
}

const layoutFileSchema = goStruct([{ json: 'imageLayoutVersion', type: goString }]);

export interface OpenLayoutOptions {
  /** Create the directory, `oci-layout`, `index.json` and `blobs/sha256` where missing. */
  create?: boolean;
}

export class OciLayoutTarget implements Target {
  readonly description: string;
  readonly referrersNeedTags = true; // referrers() reads index.json
  /** Pending index.json update; each tag() chains on it so updates never interleave. */
  private indexUpdate: Promise<unknown> = Promise.resolve();

  private constructor(readonly dir: string) {
    this.description = `oci:${dir}`;
  }

  /** Opens (or with `create`, initialises) the layout in `dir`; checks `oci-layout` and `index.json`. */
  static async open(dir: string, options: OpenLayoutOptions = {}): Promise<OciLayoutTarget> {
    const layout = new OciLayoutTarget(dir);
    if (options.create) await layout.initialise();
    const version = await layout.readLayoutVersion();
    if (version !== IMAGE_LAYOUT_VERSION) {
      throw new LayoutError(
        `${layout.description}: unsupported imageLayoutVersion ${JSON.stringify(version)} (expected ${IMAGE_LAYOUT_VERSION})`,
      );
    }
    await layout.readIndex();
    return layout;
  }

  /** The entries of index.json, in order. */
  async listManifests(): Promise<Descriptor[]> {
    return (await this.readIndex()).manifests ?? [];
  }

  /**
   * A ref name (index.json `org.opencontainers.image.ref.name`), a `sha256:` digest of a manifest or
   * index blob (media type read from its JSON), or '' for the only entry of index.json.
   */
  async resolve(reference: string): Promise<Descriptor> {
    if (isDigest(reference)) return this.resolveDigest(reference);
    const entries = await this.listManifests();
    if (reference === '') {
      if (entries.length === 1) return entries[0]!;
      if (entries.length === 0) throw new NotFoundError(`${this.description}: index.json lists no manifests`);
      throw new LayoutError(`${this.description}: index.json lists ${entries.length} manifests; name one as oci:<dir>:<ref-name>`);
    }
    const matches = entries.filter((e) => e.annotations?.[ANNOTATION_REF_NAME] === reference);
    if (matches.length === 0) throw new NotFoundError(`${this.description}: no manifest tagged ${JSON.stringify(reference)}`);
    if (new Set(matches.map((m) => m.digest)).size > 1) {
      throw new LayoutError(`${this.description}: ref name ${JSON.stringify(reference)} names ${matches.length} different manifests`);
    }
    return matches[0]!;
  }

  async fetch(desc: Descriptor, options: FetchOptions = {}): Promise<AsyncIterable<Uint8Array>> {
    const path = this.blobPath(desc.digest);
    const offset = options.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > desc.size) {
      throw new RangeError(`${this.description}: offset ${offset} is outside ${desc.digest} (${desc.size} bytes)`);
    }
    // Checked now, so a wrong file fails the fetch itself; opened again (same checks) when read.
    const checked = await this.openBlob(desc.digest, path, desc.size);
    await checked.handle.close();
    const what = `${this.description}: blob ${desc.digest}`;
    const chunks = readChunks(() => openRegular(checked.path, what, desc), offset, desc.size, options);
    // A ranged read cannot be verified; a whole read is checked against the digest as it streams.
    return offset === 0 ? verifyStream(chunks, desc) : chunks;
  }

  async fetchBytes(desc: Descriptor, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    checkDescriptorSize(desc, this.description);
    const path = this.blobPath(desc.digest);
    const bytes = await this.readBlob(desc.digest, path, desc.size, options.signal);
    verifyBytes(desc, bytes);
    return bytes;
  }

  async exists(desc: Descriptor): Promise<boolean> {
    try {
      return (await stat(this.blobPath(desc.digest))).isFile();
    } catch (err) {
      if (isMissingFile(err)) return false;
      throw err;
    }
  }

  async push(desc: Descriptor, content: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<void> {
    verifyBytes(desc, content);
    if (await this.exists(desc)) return;
    options.signal?.throwIfAborted();
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    await this.writeAtomic(this.blobPath(desc.digest), content);
  }

  /** Streams a blob into the layout through a temporary file, checking digest and size before the rename. */
  async pushFrom(
    desc: Descriptor,
    openSource: () => Promise<AsyncIterable<Uint8Array>>,
    options: { signal?: AbortSignal } = {},
  ): Promise<void> {
    if (await this.exists(desc)) return;
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    const temp = join(this.dir, `.tmp-${randomUUID()}`);
    const file = await openSource();
    const handle = await open(temp, 'wx');
    try {
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of file) {
        options.signal?.throwIfAborted();
        hash.update(chunk);
        size += chunk.length;
        await handle.write(chunk);
      }
      await handle.close();
      const digest = `sha256:${hash.digest('hex')}`;
      if (digest !== desc.digest || size !== desc.size) {
        throw new DigestMismatchError(
          desc.digest,
          digest,
          `${this.description}: blob ${desc.digest} arrived as ${digest} (${size} bytes, expected ${desc.size})`,
        );
      }
      await rename(temp, this.blobPath(desc.digest));
    } catch (err) {
      await handle.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Points `tag` at `desc` in index.json: the entry carrying that ref name is replaced in place (all of
   * them, if several), otherwise one is appended; other entries keep their order and content.
   */
  async tag(desc: Descriptor, tag: string): Promise<void> {
    if (!isRefName(tag)) throw new InvalidReferenceError(`${this.description}: ${JSON.stringify(tag)} is not a valid OCI ref name`);
    if (!(await this.exists(desc))) throw new NotFoundError(`${this.description}: cannot tag ${desc.digest}: blob not found`);
    const entry: Descriptor = { ...desc, annotations: { ...desc.annotations, [ANNOTATION_REF_NAME]: tag } };
    const update = this.indexUpdate.then(() =>
      this.withIndexLock(async () => {
        const index = await this.readIndex();
        const manifests = index.manifests ?? [];
        const first = manifests.findIndex((m) => m.annotations?.[ANNOTATION_REF_NAME] === tag);
        const kept = manifests.filter((m) => m.annotations?.[ANNOTATION_REF_NAME] !== tag);
        kept.splice(first < 0 ? kept.length : first, 0, entry);
        await this.writeAtomic(this.indexPath(), marshalIndex({ ...index, manifests: kept }));
      }),
    );
    this.indexUpdate = update.catch(() => undefined);
    await update;
  }

  /**
   * Manifests and indexes listed in index.json whose `subject` is `subject`, as referrers API descriptors
   * (artifactType = the manifest's artifactType, else its config media type; its annotations).
   */
  async referrers(subject: Descriptor, artifactType?: string): Promise<Descriptor[]> {
    const found = new Map<string, Descriptor>();
    for (const entry of await this.listManifests()) {
      if (found.has(entry.digest) || !(isManifest(entry.mediaType) || isIndex(entry.mediaType))) continue;
      if (!(await this.exists(entry))) continue;
      const referrer = describeReferrer(entry, await this.fetchBytes(entry));
      if (referrer?.subject !== subject.digest) continue;
      if (artifactType !== undefined && referrer.descriptor.artifactType !== artifactType) continue;
      found.set(entry.digest, referrer.descriptor);
    }
    return [...found.values()];
  }

  private async resolveDigest(digest: string): Promise<Descriptor> {
    const path = this.blobPath(digest);
    const { handle } = await this.openBlob(digest, path);
    const { size } = await handle.stat();
    await handle.close();
    if (size > MAX_MANIFEST_SIZE)
      throw new LayoutError(`${this.description}: blob ${digest} (${size} bytes) is too large to be a manifest`);
    const bytes = await this.readBlob(digest, path, size);
    verifyBytes({ mediaType: '', digest, size }, bytes);
    return { mediaType: sniffMediaType(bytes, `${this.description}: blob ${digest}`), digest, size };
  }

  private async initialise(): Promise<void> {
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    const layoutFile = goMarshal(layoutFileSchema, { imageLayoutVersion: IMAGE_LAYOUT_VERSION });
    await writeIfAbsent(join(this.dir, 'oci-layout'), layoutFile);
    const empty: Index = { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [] };
    await writeIfAbsent(this.indexPath(), marshalIndex(empty));
  }

  private async readLayoutVersion(): Promise<string> {
    const bytes = await this.readLayoutFile('oci-layout', MAX_LAYOUT_FILE_BYTES);
    return (goUnmarshal(layoutFileSchema, bytes) as { imageLayoutVersion: string }).imageLayoutVersion;
  }

  private async readIndex(): Promise<Index> {
    const bytes = await this.readLayoutFile('index.json', MAX_INDEX_JSON_BYTES);
    try {
      return parseIndex(bytes);
    } catch (err) {
      throw new LayoutError(`${this.description}: index.json: ${(err as Error).message}`);
    }
  }

  private async readLayoutFile(name: string, limit: number): Promise<Uint8Array> {
    const path = join(this.dir, name);
    const handle = await orNotFound(
      openRegular(path, `${this.description}: ${name}`),
      `${this.description} is not an OCI image layout: no ${name}`,
    );
    try {
      const { size } = await handle.stat();
      if (size > limit)
        throw new LimitExceededError(
          `max-${name.replace('.', '-')}-bytes`,
          `${this.description}: ${name} is ${size} bytes, over the ${limit}-byte limit`,
        );
      return await readExactly(handle, size);
    } finally {
      await handle.close();
    }
  }

  /**
   * Opens a blob for reading after checking what it is: a regular file (or a symlink to one inside the
   * layout), of `size` bytes when given. Refuses FIFOs, devices and symlinks leading out of the layout.
   */
  private async openBlob(digest: string, path: string, size?: number): Promise<{ handle: FileHandle; path: string }> {
    const what = `${this.description}: blob ${digest}`;
    const info = await orNotFound(lstat(path), `${what} not found`);
    let target = path;
    if (info.isSymbolicLink()) {
      const [resolved, root] = await Promise.all([orNotFound(realpath(path), `${what} not found (dangling symlink)`), realpath(this.dir)]);
      const inside = relative(root, resolved);
      if (inside === '' || inside.startsWith('..') || isAbsolute(inside))
        throw new LayoutError(`${what} is a symlink leading out of the layout; refused`);
      target = resolved;
    }
    return {
      handle: await orNotFound(openRegular(target, what, size === undefined ? undefined : { digest, size }), `${what} not found`),
      path: target,
    };
  }

  private async readBlob(digest: string, path: string, size: number, signal?: AbortSignal): Promise<Uint8Array> {
    const { handle } = await this.openBlob(digest, path, size);
    try {
      signal?.throwIfAborted();
      return await readExactly(handle, size);
    } finally {
      await handle.close();
    }
  }

  /**
   * Runs `work` holding `index.json.lock` (created exclusively, holding our pid and host), so that
   * concurrent processes updating index.json take turns. A lock left by a process that is gone is removed.
   */
  private async withIndexLock<T>(work: () => Promise<T>): Promise<T> {
    const lockPath = join(this.dir, 'index.json.lock');
    const waitUntil = Date.now() + LOCK_WAIT_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        await writeFile(lockPath, JSON.stringify({ pid: process.pid, host: hostname(), at: Date.now() }), { flag: 'wx' });
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      if (await isStaleLock(lockPath)) {
        await unlink(lockPath).catch(() => undefined);
        continue;
      }
      if (Date.now() > waitUntil)
        throw new LayoutError(
          `${this.description}: index.json is locked by another process (${lockPath}); remove it if no soci-indexer is running`,
        );
      await new Promise((resolve) => setTimeout(resolve, Math.min(200, 5 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random())));
    }
    try {
      return await work();
    } finally {
      await unlink(lockPath).catch(() => undefined);
    }
  }

  private blobPath(digest: string): string {
    return join(this.dir, 'blobs', 'sha256', digestHex(digest));
  }

  private indexPath(): string {
    return join(this.dir, 'index.json');
  }

  /** Writes through a temporary file in the layout directory and a rename, so readers never see a partial file. */
  private async writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
    const temp = join(this.dir, `.tmp-${randomUUID()}`);
    try {
      await writeFile(temp, bytes, { flag: 'wx' });
      await rename(temp, path);
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
  }
}

/** The subject digest and referrers-API descriptor of a manifest or index blob, or undefined without subject. */
function describeReferrer(entry: Descriptor, bytes: Uint8Array): { subject: string; descriptor: Descriptor } | undefined {
  const parsed = isIndex(entry.mediaType) ? parseIndex(bytes) : parseManifest(bytes);
  if (!parsed.subject) return undefined;
  const artifactType = parsed.artifactType || ('config' in parsed ? parsed.config.mediaType : '');
  const descriptor: Descriptor = {
    mediaType: entry.mediaType,
    digest: entry.digest,
    size: entry.size,
    ...(parsed.annotations && { annotations: parsed.annotations }),
    ...(artifactType && { artifactType }),
  };
  return { subject: parsed.subject.digest, descriptor };
}

/** The media type of a manifest or index blob: its `mediaType` field, else guessed from its fields. */
function sniffMediaType(bytes: Uint8Array, what: string): string {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new LayoutError(`${what} is not JSON, so not a manifest or index`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new LayoutError(`${what} is not a manifest or index`);
  const fields = doc as Record<string, unknown>;
  if (typeof fields.mediaType === 'string' && fields.mediaType !== '') return fields.mediaType;
  if (Array.isArray(fields.manifests)) return MEDIA_TYPE_OCI_INDEX;
  // An image config also has a `config` object, so a manifest is recognised by `layers` or a config digest.
  const config = fields.config as Record<string, unknown> | null | undefined;
  if (Array.isArray(fields.layers) || typeof config?.digest === 'string') return MEDIA_TYPE_OCI_MANIFEST;
  throw new LayoutError(`${what} has no mediaType and is neither a manifest nor an index`);
}

/**
 * Opens a file that must be a regular file (of `blob.size` bytes when given): O_NOFOLLOW and O_NONBLOCK, so
 * neither a symlink nor a FIFO swapped in is followed or waited on.
 */
async function openRegular(path: string, what: string, blob?: { digest: string; size: number }): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(path, OPEN_FLAGS);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new LayoutError(`${what} is a symlink; refused`);
    throw err;
  }
  const info = await handle.stat();
  if (!info.isFile()) {
    await handle.close();
    const kind = info.isFIFO()
      ? 'a FIFO'
      : info.isCharacterDevice() || info.isBlockDevice()
        ? 'a device'
        : info.isSocket()
          ? 'a socket'
          : info.isDirectory()
            ? 'a directory'
            : 'not a regular file';
    throw new LayoutError(`${what} is ${kind}, not a regular file; refused`);
  }
  if (blob !== undefined && info.size !== blob.size) {
    await handle.close();
    // The bytes are not what the descriptor names, as with a wrong digest (the other backends say the same).
    throw new DigestMismatchError(blob.digest, `${info.size} bytes`, `${what} is ${info.size} bytes, its descriptor says ${blob.size}`);
  }
  return handle;
}

/** Reads exactly `size` bytes from the start of an open regular file (fails if it shrank meanwhile). */
async function readExactly(handle: FileHandle, size: number): Promise<Uint8Array> {
  const bytes = Buffer.alloc(size);
  for (let at = 0; at < size; ) {
    const { bytesRead } = await handle.read(bytes, at, size - at, at);
    if (bytesRead === 0) throw new LayoutError(`file shrank while being read (${at} of ${size} bytes)`);
    at += bytesRead;
  }
  return bytes;
}

/** A lock whose holder on this host is gone, or older than STALE_LOCK_MS when it cannot be checked. */
async function isStaleLock(path: string): Promise<boolean> {
  let holder: { pid?: unknown; host?: unknown; at?: unknown };
  try {
    holder = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false; // released meanwhile: just retry
    // Being written right now, or garbage: judge by age.
    try {
      return Date.now() - (await stat(path)).mtimeMs > STALE_LOCK_MS;
    } catch {
      return false;
    }
  }
  if (holder.host === hostname() && typeof holder.pid === 'number') {
    try {
      process.kill(holder.pid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }
  return typeof holder.at !== 'number' || Date.now() - holder.at > STALE_LOCK_MS;
}

/** The bytes [start, end) of the file `openFile` opens; a file that grew is read only to `end`. */
async function* readChunks(
  openFile: () => Promise<FileHandle>,
  start: number,
  end: number,
  options: FetchOptions,
): AsyncGenerator<Uint8Array> {
  const handle = await openFile();
  try {
    let position = start;
    while (position < end) {
      options.signal?.throwIfAborted();
      const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, end - position));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) throw new LayoutError(`blob shrank while being read (${position} of ${end} bytes)`);
      position += bytesRead;
      options.onBytes?.(bytesRead);
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

async function writeIfAbsent(path: string, bytes: Uint8Array): Promise<void> {
  try {
    await writeFile(path, bytes, { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** Turns a missing file (ENOENT) into a NotFoundError with `message`. */
async function orNotFound<T>(work: Promise<T>, message: string): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (isMissingFile(err)) throw new NotFoundError(message);
    throw err;
  }
}

function isMissingFile(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}
