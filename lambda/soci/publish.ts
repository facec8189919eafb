// Pushes a build's content children first, so that nothing is ever referenced before it exists: (for an
// output other than the source) the image's own blobs and manifests, then zTOC and prefetch blobs and the
// empty config, the SOCI index manifests, the rewritten image manifests, and last the OCI image index.
// Each stage finishes before the next starts; any failure stops the whole push before tagging.
import { isManifest } from '../oci/media-types.ts';
import type { Descriptor, Target } from '../oci/target.ts';
import { mapPool } from './pool.ts';
import { checkDeadline, PUSH_MARGIN_MS } from './tagging.ts';
import type { BuildEvent } from './types.ts';

export interface Content {
  descriptor: Descriptor;
  bytes: Uint8Array;
  /** For events: `ztoc`, `prefetch`, `config`, `soci-index`, `image-manifest`, `image-index`. */
  what: string;
}

export interface PublishPlan {
  /** Content to copy from the source first (config and layer blobs, then image manifests). */
  copy: Descriptor[];
  stages: Content[][];
}

export interface PublishOptions {
  concurrency: number;
  deadline?: number;
  signal?: AbortSignal;
  emit: (event: BuildEvent) => void;
  onBytes: (n: number) => void;
}

/** Copies a blob, streamed when the destination can take a stream (layers can be any size). */
export async function copyBlob(
  source: Target,
  destination: Target,
  desc: Descriptor,
  signal?: AbortSignal,
  onBytes?: (n: number) => void,
): Promise<void> {
  const options = { ...(signal ? { signal } : {}), ...(onBytes ? { onBytes } : {}) };
  if (destination.pushFrom) return destination.pushFrom(desc, () => source.fetch(desc, options), signal ? { signal } : {});
  const bytes = await source.fetchBytes(desc, signal ? { signal } : {});
  onBytes?.(bytes.length);
  await destination.push(desc, bytes, signal ? { signal } : {});
}

function distinct<T>(items: readonly T[], digest: (item: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((item) => !seen.has(digest(item)) && seen.add(digest(item)));
}

/** Copies what the output lacks, blobs (streamed where the output allows) before the manifests that refer to them. */
async function copyContent(source: Target, output: Target, descriptors: Descriptor[], options: PublishOptions): Promise<void> {
  const unique = distinct(descriptors, (d) => d.digest);
  const stages = [unique.filter((d) => !isManifest(d.mediaType)), unique.filter((d) => isManifest(d.mediaType))];
  for (const stage of stages) {
    await mapPool(
      stage,
      options.concurrency,
      async (desc, _i, signal) => {
        if (await output.exists(desc)) return;
        if (isManifest(desc.mediaType)) {
          const bytes = await source.fetchBytes(desc, { signal });
          options.onBytes(bytes.length);
          await output.push(desc, bytes, { signal });
        } else {
          await copyBlob(source, output, desc, signal, options.onBytes);
        }
        options.emit({ type: 'push', what: isManifest(desc.mediaType) ? 'copied-manifest' : 'copied-blob', digest: desc.digest });
      },
      options.signal,
    );
  }
}

export async function publish(source: Target, output: Target, plan: PublishPlan, options: PublishOptions): Promise<void> {
  checkDeadline(options.deadline, PUSH_MARGIN_MS, 'pushing');
  if (plan.copy.length > 0) await copyContent(source, output, plan.copy, options);
  for (const stage of plan.stages) {
    await mapPool(
      distinct(stage, (c) => c.descriptor.digest),
      options.concurrency,
      async (content, _i, signal) => {
        await output.push(content.descriptor, content.bytes, { signal });
        options.emit({ type: 'push', what: content.what, digest: content.descriptor.digest });
      },
      options.signal,
    );
  }
}
