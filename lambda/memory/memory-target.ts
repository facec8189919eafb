// A Target held in memory: blobs and manifests by digest, tags by name. For tests of the soci core that
// need no disk and no registry, and for embedders that build an index before deciding where it goes.
// It keeps the same promises as the other backends (test/support/target-contract.ts checks all three):
// content is verified against its descriptor on push and on every whole read, a ranged read is not,
// what is missing is a NotFoundError, pushes are idempotent.

import { digestHex, verifyBytes, verifyStream } from '../oci/digest.ts';
import { InvalidReferenceError, NotFoundError } from '../oci/errors.ts';
import { parseIndex, parseManifest } from '../oci/go-json.ts';
import { isIndex, isManifest } from '../oci/media-types.ts';
import { isRefName } from '../oci/reference.ts';
import { checkDescriptorSize, type Descriptor, type FetchOptions, type Target } from '../oci/target.ts';

export class MemoryTarget implements Target {
  readonly description: string;
  /**
   * The stored content by digest. Exposed for inspection; a test may alter an entry's bytes to play a
   * corrupted store, which the next whole read then reports as a digest mismatch.
   */
  readonly blobs = new Map<string, Uint8Array>();
  /** Pushed manifests and indexes by digest (their descriptors as pushed), which `referrers` scans. */
  private readonly manifests = new Map<string, Descriptor>();
  private readonly tags = new Map<string, Descriptor>();

  constructor(name = 'memory') {
    this.description = `memory:${name}`;
  }

  /** The tags, in the order they were first set. */
  listTags(): string[] {
    return [...this.tags.keys()];
  }

  async resolve(reference: string): Promise<Descriptor> {
    if (reference.includes(':')) {
      digestHex(reference);
      const manifest = this.manifests.get(reference);
      if (!manifest) throw new NotFoundError(`${this.description}: no manifest ${reference}`);
      return plain(manifest);
    }
    checkTag(this.description, reference);
    const tagged = this.tags.get(reference);
    if (!tagged) throw new NotFoundError(`${this.description}: no manifest tagged ${JSON.stringify(reference)}`);
    return tagged;
  }

  async fetch(desc: Descriptor, options: FetchOptions = {}): Promise<AsyncIterable<Uint8Array>> {
    const offset = options.offset ?? 0;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > desc.size) {
      throw new RangeError(`${this.description}: offset ${offset} is outside ${desc.digest} (${desc.size} bytes)`);
    }
    const bytes = this.stored(desc);
    const chunks = (async function* () {
      options.signal?.throwIfAborted();
      const part = bytes.subarray(offset, Math.max(offset, Math.min(bytes.length, desc.size + 1)));
      options.onBytes?.(part.length);
      if (part.length > 0) yield part;
    })();
    // As the other backends: a whole read is checked against the digest, a ranged read cannot be.
    return offset === 0 ? verifyStream(chunks, desc) : chunks;
  }

  async fetchBytes(desc: Descriptor, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    checkDescriptorSize(desc, this.description);
    options.signal?.throwIfAborted();
    const bytes = this.stored(desc);
    verifyBytes(desc, bytes);
    return bytes.slice();
  }

  async exists(desc: Descriptor): Promise<boolean> {
    return this.blobs.has(desc.digest);
  }

  async push(desc: Descriptor, content: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<void> {
    verifyBytes(desc, content);
    options.signal?.throwIfAborted();
    if (!this.blobs.has(desc.digest)) this.blobs.set(desc.digest, content.slice());
    if ((isManifest(desc.mediaType) || isIndex(desc.mediaType)) && !this.manifests.has(desc.digest))
      this.manifests.set(desc.digest, plain(desc));
  }

  async pushFrom(desc: Descriptor, open: () => Promise<AsyncIterable<Uint8Array>>, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.blobs.has(desc.digest)) return;
    const parts: Uint8Array[] = [];
    for await (const part of verifyStream(await open(), desc)) {
      options.signal?.throwIfAborted();
      parts.push(part);
    }
    await this.push(desc, Buffer.concat(parts), options);
  }

  async tag(desc: Descriptor, tag: string): Promise<void> {
    checkTag(this.description, tag);
    if (!this.manifests.has(desc.digest)) throw new NotFoundError(`${this.description}: cannot tag ${desc.digest}: no such manifest`);
    this.tags.set(tag, plain(desc));
  }

  /** Every pushed manifest or index whose `subject` is `subject` (tagged or not), as the referrers API lists them. */
  async referrers(subject: Descriptor, artifactType?: string): Promise<Descriptor[]> {
    const found: Descriptor[] = [];
    for (const manifest of this.manifests.values()) {
      const bytes = this.blobs.get(manifest.digest);
      if (!bytes) continue;
      const parsed = isIndex(manifest.mediaType) ? parseIndex(bytes) : parseManifest(bytes);
      if (parsed.subject?.digest !== subject.digest) continue;
      const type = parsed.artifactType || ('config' in parsed ? parsed.config.mediaType : '');
      if (artifactType !== undefined && type !== artifactType) continue;
      found.push({
        ...plain(manifest),
        ...(parsed.annotations && { annotations: parsed.annotations }),
        ...(type && { artifactType: type }),
      });
    }
    return found;
  }

  /** The bytes stored under `desc.digest`, or a NotFoundError. */
  private stored(desc: Descriptor): Uint8Array {
    const bytes = this.blobs.get(desc.digest);
    if (!bytes) throw new NotFoundError(`${this.description}: blob ${desc.digest} not found`);
    return bytes;
  }
}

/** The media type, digest and size of a descriptor: what resolve() answers, whatever it was pushed with. */
function plain(desc: Descriptor): Descriptor {
  return { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
}

function checkTag(where: string, tag: string): void {
  if (!isRefName(tag)) throw new InvalidReferenceError(`${where}: ${JSON.stringify(tag)} is not a valid tag`);
}
