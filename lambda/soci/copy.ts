// Copies an image (index, manifests, configs, layers) from one target to another, children first, then
// tags it: used to index into a different OCI layout without touching the source.
import { isIndex, isManifest } from '../oci/media-types.ts';
import { parseIndex, parseManifest } from '../oci/go-json.ts';
import type { Descriptor, Target } from '../oci/target.ts';

export interface CopyOptions {
  /** Tag the copied root with this name in the destination. */
  tag?: string;
  signal?: AbortSignal;
}

export async function copyImage(source: Target, reference: string, destination: Target, options: CopyOptions = {}): Promise<Descriptor> {
  const root = await source.resolve(reference);
  await copyNode(source, destination, root, options.signal);
  if (options.tag) await destination.tag(root, options.tag);
  return root;
}

async function copyNode(source: Target, destination: Target, desc: Descriptor, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  if (await destination.exists(desc)) return;
  if (!isIndex(desc.mediaType) && !isManifest(desc.mediaType)) return copyBlob(source, destination, desc, signal);
  const bytes = await source.fetchBytes(desc, signal ? { signal } : {});
  if (isIndex(desc.mediaType)) {
    for (const child of parseIndex(bytes).manifests ?? []) await copyNode(source, destination, child, signal);
  } else if (isManifest(desc.mediaType)) {
    const manifest = parseManifest(bytes);
    for (const blob of [manifest.config, ...(manifest.layers ?? [])]) await copyNode(source, destination, blob, signal);
  }
  await destination.push(desc, bytes, signal ? { signal } : {});
}

/** Copies a blob, streamed when the destination can take a stream (layers can be any size). */
export async function copyBlob(source: Target, destination: Target, desc: Descriptor, signal?: AbortSignal, onBytes?: (n: number) => void): Promise<void> {
  const options = { ...(signal ? { signal } : {}), ...(onBytes ? { onBytes } : {}) };
  if (destination.pushFrom) return destination.pushFrom(desc, () => source.fetch(desc, options), signal ? { signal } : {});
  const bytes = await source.fetchBytes(desc, signal ? { signal } : {});
  onBytes?.(bytes.length);
  await destination.push(desc, bytes, signal ? { signal } : {});
}
