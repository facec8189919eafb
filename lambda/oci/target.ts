// One content abstraction, many backends (registry, OCI layout directory), in the spirit of oras-go's
// Target: the soci core only ever talks to this interface.
import { LimitExceededError } from './errors.ts';

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
}

/** An OCI content descriptor (image-spec v1.1). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  data?: string;
  platform?: Platform;
  artifactType?: string;
}

export interface FetchOptions {
  /** Start reading at this byte offset (a ranged read); the digest is then not verified. */
  offset?: number;
  signal?: AbortSignal;
  /** Called with the number of bytes received, for progress displays and byte accounting. */
  onBytes?: (n: number) => void;
}

/** The most `fetchBytes` holds in memory, whatever a descriptor claims; layers are streamed with `fetch`. */
export const MAX_FETCH_BYTES = 64 * 1024 * 1024;
/** An image config larger than this is refused (containers/image's limit). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** Throws a LimitExceededError named `limitName` when `desc` is larger than `limit`; `where` names the target. */
export function checkDescriptorSize(desc: Descriptor, where: string, limit = MAX_FETCH_BYTES, limitName = 'max-fetch-bytes'): void {
  if (desc.size > limit) {
    throw new LimitExceededError(
      limitName,
      `${where}: ${desc.digest} is ${desc.size} bytes, over the ${limit / (1024 * 1024)} MiB limit (${limitName})`,
    );
  }
}

export interface Target {
  /** Where this target points, for logs and errors (never contains credentials). */
  readonly description: string;
  /** Resolves a tag or digest to the descriptor of the manifest or index it names. */
  resolve(reference: string): Promise<Descriptor>;
  /** Streams a blob or manifest. Without `offset`, the stream fails if the bytes do not match the digest. */
  fetch(desc: Descriptor, options?: FetchOptions): Promise<AsyncIterable<Uint8Array>>;
  /**
   * Reads a small blob (an image config) or manifest fully into memory, verifying its digest. A
   * descriptor larger than MAX_FETCH_BYTES is refused with a LimitExceededError before anything is read.
   */
  fetchBytes(desc: Descriptor, options?: { signal?: AbortSignal }): Promise<Uint8Array>;
  /** True when the blob or manifest is present. */
  exists(desc: Descriptor): Promise<boolean>;
  /**
   * Stores a blob, or a manifest/index (decided by media type), under its digest. Pushing content
   * that already exists is a no-op. Manifests are pushed by digest only: tagging is separate.
   */
  push(desc: Descriptor, content: Uint8Array, options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Stores a blob streamed from `open()` without holding it in memory, verifying its digest and size;
   * `open` may be called again to retry. Optional: callers fall back to `fetchBytes` + `push`.
   */
  pushFrom?(desc: Descriptor, open: () => Promise<AsyncIterable<Uint8Array>>, options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Makes a blob that `from` holds appear here without sending its bytes (a registry's cross-repository
   * mount). True when it did; false when this backend cannot (another registry, mounting refused), and
   * the caller then writes the bytes itself. Optional.
   */
  mountFrom?(desc: Descriptor, from: Target, options?: { signal?: AbortSignal }): Promise<boolean>;
  /** Points `tag` at an existing manifest or index. */
  tag(desc: Descriptor, tag: string): Promise<void>;
  /** Manifests whose `subject` is the given manifest, optionally filtered by artifact type. */
  referrers(subject: Descriptor, artifactType?: string): Promise<Descriptor[]>;
  /**
   * True when `referrers` only sees manifests that carry a tag (an OCI layout finds what its index.json
   * lists), so a manifest meant to be found as a referrer must be tagged. @default false
   */
  readonly referrersNeedTags?: boolean;
}
