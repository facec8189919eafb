// The zTOC cache: zTOCs already built, kept in a repository of their own (a registry repository or an OCI
// layout, through the Target interface) so that a layer shared by many images, or an image whose build
// stopped at its deadline, is indexed once. One entry per (layer digest, everything that changes the zTOC
// bytes); an entry is a small OCI manifest whose one layer is the zTOC, tagged by a name derived from the
// key. Nothing here trusts the entry: a hit is used only when the manifest, the blob and the zTOC's own
// header agree with the key, so a bad entry costs a rebuild, never a wrong index.
import { createHash } from 'node:crypto';
import { descriptorFor } from '../oci/digest.ts';
import { isNotFound, isTransient } from '../oci/errors.ts';
import { marshalManifest, parseManifest } from '../oci/go-json.ts';
import { EMPTY_JSON_CONFIG, MEDIA_TYPE_OCI_EMPTY, MEDIA_TYPE_OCI_MANIFEST, SOCI_ZTOC_MEDIA_TYPE } from '../oci/media-types.ts';
import type { Descriptor, Target } from '../oci/target.ts';
import { VERSION } from '../version.ts';
import type { ZtocSummary } from '../ztoc/builder.ts';
import { parseZtoc, parseZtocHeader, type ZtocHeader } from '../ztoc/codec.ts';
import { compressionNamed } from '../ztoc/compression/table.ts';
import { type CompressionAlgorithm, ZTOC_VERSION, type Ztoc } from '../ztoc/types.ts';
import { EMPTY_CONFIG_BYTES } from './index-manifest.ts';

/** The artifact type of a cache entry (its manifest's `artifactType` and config media type). */
export const ZTOC_CACHE_ARTIFACT_TYPE = 'application/vnd.soci-indexer.ztoc-cache.v1+json';
/**
 * Bumped whenever the bytes this build of soci-indexer writes for the same key could change (an entry
 * written by another version is then never read); the tool version is part of the key as well.
 */
export const ZTOC_CACHE_FORMAT = '1';
/** The largest zTOC accepted from the cache (about a 16 GiB uncompressed layer at the 4 MiB default span). */
export const MAX_CACHED_ZTOC_BYTES = 256 * 1024 * 1024;

const ANNOTATION_PREFIX = 'io.github.soci-indexer.ztoc-cache.';

/**
 * Everything that decides a zTOC's bytes. The xattr optimisation, prefetch files and the minimum layer
 * size do not: they only change the index around the zTOC, which is rebuilt from the zTOC on every run.
 */
export interface ZtocCacheKey {
  layerDigest: string;
  compression: CompressionAlgorithm;
  spanSize: number;
  buildToolId: string;
}

/** The key as stored (annotations) and hashed (tag): every field, the formats and the tool version included. */
export function keyFields(key: ZtocCacheKey): Record<string, string> {
  return {
    [`${ANNOTATION_PREFIX}layer-digest`]: key.layerDigest,
    [`${ANNOTATION_PREFIX}compression`]: key.compression,
    [`${ANNOTATION_PREFIX}span-size`]: String(key.spanSize),
    [`${ANNOTATION_PREFIX}build-tool-id`]: key.buildToolId,
    [`${ANNOTATION_PREFIX}ztoc-version`]: ZTOC_VERSION,
    [`${ANNOTATION_PREFIX}format`]: ZTOC_CACHE_FORMAT,
    [`${ANNOTATION_PREFIX}tool-version`]: VERSION,
  };
}

/**
 * `sha256-<layer hex>.<16 hex of the hash of the key>` (88 characters, within the 128 of the tag
 * grammar): the layer is readable in a tag listing, the rest of the key is hashed.
 */
export function cacheTag(key: ZtocCacheKey): string {
  const [algorithm, hex] = key.layerDigest.split(':');
  const config = createHash('sha256')
    .update(JSON.stringify(keyFields(key)))
    .digest('hex')
    .slice(0, 16);
  return `${algorithm}-${hex}.${config}`;
}

/** A cache entry that checked out: the zTOC bytes, their summary and, when asked for, the parsed model. */
export interface CachedZtoc {
  descriptor: Descriptor;
  bytes: Uint8Array;
  summary: ZtocSummary;
  /** The whole zTOC, TOC entries decoded: only when the lookup was asked for it (`{ toc: true }`). */
  ztoc?: Ztoc;
}

/** What `place` needs: a zTOC blob and its bytes (a hit, or a zTOC just built and stored). */
export type ZtocBlob = Pick<CachedZtoc, 'descriptor' | 'bytes'>;

/** A lookup's answer: a verified hit, or a miss with why (`absent` is the normal miss). */
export type CacheLookup = { hit: CachedZtoc } | { miss: 'absent' | 'invalid'; reason?: string };

/** What the soci core needs from a cache; backend-neutral (see RepositoryZtocCache). */
export interface ZtocCache {
  readonly description: string;
  /**
   * A verified entry for `key`; throws only on I/O failures (the caller treats those as misses too).
   * `toc: true` also decodes the TOC entries (`hit.ztoc`), which only the xattr verdict and prefetch need.
   */
  lookup(key: ZtocCacheKey, layerSize: number, signal?: AbortSignal, options?: { toc?: boolean }): Promise<CacheLookup>;
  /** Stores a freshly built zTOC under `key`. */
  store(key: ZtocCacheKey, bytes: Uint8Array, summary: ZtocSummary, signal?: AbortSignal): Promise<void>;
  /**
   * Puts the zTOC blob of a hit into `output`: mounted from the cache's repository when the backend can,
   * else written from the bytes already read. Returns how.
   */
  place(blob: ZtocBlob, output: Target, signal?: AbortSignal): Promise<'mounted' | 'copied' | 'present'>;
}

function invalid(reason: string): CacheLookup {
  return { miss: 'invalid', reason };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The span size recorded in the zTOC's own checkpoint data. */
function ztocSpanSize(ztoc: ZtocHeader | Ztoc): number {
  return compressionNamed(ztoc.compressionAlgorithm).spanSize(ztoc.checkpoints);
}

/** The cache in a repository reached through a Target (a registry repository or an OCI layout). */
export class RepositoryZtocCache implements ZtocCache {
  readonly description: string;
  /**
   * The entries' shared config blob, pushed once per cache object however many zTOCs are stored at once.
   * Concurrent uploads of one blob make docker-registry (filesystem storage) rewrite its link file in place,
   * and a manifest PUT that reads the file meanwhile fails (400 DIGEST_INVALID): an entry lost to a race.
   */
  private configPushed: Promise<void> | undefined;

  constructor(readonly target: Target) {
    this.description = target.description;
  }

  async lookup(key: ZtocCacheKey, layerSize: number, signal?: AbortSignal, options: { toc?: boolean } = {}): Promise<CacheLookup> {
    const tag = cacheTag(key);
    let manifestDesc: Descriptor;
    try {
      manifestDesc = await this.target.resolve(tag);
    } catch (err) {
      if (isNotFound(err)) return { miss: 'absent' };
      throw err;
    }
    if (manifestDesc.mediaType !== MEDIA_TYPE_OCI_MANIFEST)
      return invalid(`entry ${tag} is a ${manifestDesc.mediaType}, not an OCI manifest`);
    let manifest;
    try {
      manifest = parseManifest(await this.target.fetchBytes(manifestDesc, signal ? { signal } : {}));
    } catch (err) {
      if (signal?.aborted) throw err;
      return invalid(`entry ${tag}: ${errorMessage(err)}`);
    }
    if (manifest.config?.mediaType !== ZTOC_CACHE_ARTIFACT_TYPE)
      return invalid(`entry ${tag} has config type ${JSON.stringify(manifest.config?.mediaType)}`);
    const expected = keyFields(key);
    for (const [name, value] of Object.entries(expected)) {
      if (manifest.annotations?.[name] !== value)
        return invalid(
          `entry ${tag}: annotation ${name} is ${JSON.stringify(manifest.annotations?.[name])}, expected ${JSON.stringify(value)}`,
        );
    }
    const layers = manifest.layers ?? [];
    if (layers.length !== 1) return invalid(`entry ${tag} has ${layers.length} layers, not 1`);
    const blob = layers[0]!;
    if (blob.mediaType !== SOCI_ZTOC_MEDIA_TYPE) return invalid(`entry ${tag}: zTOC media type ${JSON.stringify(blob.mediaType)}`);
    if (!Number.isSafeInteger(blob.size) || blob.size < 1 || blob.size > MAX_CACHED_ZTOC_BYTES)
      return invalid(`entry ${tag}: zTOC size ${blob.size} is out of range`);
    let bytes: Uint8Array;
    try {
      // The backend checks the digest and the size against the descriptor.
      bytes = await this.target.fetchBytes({ mediaType: blob.mediaType, digest: blob.digest, size: blob.size }, signal ? { signal } : {});
    } catch (err) {
      if (signal?.aborted) throw err;
      if (isTransient(err)) throw err;
      return invalid(`entry ${tag}: zTOC blob ${blob.digest}: ${errorMessage(err)}`);
    }
    // fetchBytes verified the digest (the Target contract); the length is checked again for the parse below.
    if (bytes.length !== blob.size) return invalid(`entry ${tag}: zTOC blob does not match ${blob.digest}`);
    let ztoc: ZtocHeader | Ztoc;
    let spanSize: number;
    try {
      // The TOC entries (most of the bytes) are decoded only when the caller needs them.
      ztoc = options.toc ? parseZtoc(bytes) : parseZtocHeader(bytes);
      spanSize = ztocSpanSize(ztoc);
    } catch (err) {
      return invalid(`entry ${tag}: ${errorMessage(err)}`);
    }
    const header: [string, unknown, unknown][] = [
      ['version', ztoc.version, ZTOC_VERSION],
      ['build tool id', ztoc.buildToolIdentifier, key.buildToolId],
      ['compression', ztoc.compressionAlgorithm, key.compression],
      ['span size', spanSize, key.spanSize],
      ['compressed size', ztoc.compressedArchiveSize, layerSize],
    ];
    for (const [what, actual, wanted] of header) {
      if (actual !== wanted)
        return invalid(`entry ${tag}: the zTOC's ${what} is ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}`);
    }
    const summary: ZtocSummary = {
      digest: blob.digest,
      size: blob.size,
      compression: ztoc.compressionAlgorithm,
      spanSize,
      entries: 'toc' in ztoc ? ztoc.toc.length : ztoc.tocEntries,
      spans: ztoc.maxSpanId + 1,
      compressedSize: ztoc.compressedArchiveSize,
      uncompressedSize: ztoc.uncompressedArchiveSize,
      buildToolId: ztoc.buildToolIdentifier,
    };
    return {
      hit: {
        descriptor: { mediaType: SOCI_ZTOC_MEDIA_TYPE, digest: blob.digest, size: blob.size },
        bytes,
        summary,
        ...('toc' in ztoc && { ztoc }),
      },
    };
  }

  async store(key: ZtocCacheKey, bytes: Uint8Array, summary: ZtocSummary, signal?: AbortSignal): Promise<void> {
    const options = signal ? { signal } : {};
    const blob: Descriptor = { mediaType: SOCI_ZTOC_MEDIA_TYPE, digest: summary.digest, size: summary.size };
    await this.target.push(blob, bytes, options);
    const config: Descriptor = { mediaType: ZTOC_CACHE_ARTIFACT_TYPE, digest: EMPTY_JSON_CONFIG.digest, size: EMPTY_JSON_CONFIG.size };
    await this.pushConfig(signal);
    const manifestBytes = marshalManifest({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      config,
      layers: [blob],
      annotations: keyFields(key),
    });
    const manifest = descriptorFor(MEDIA_TYPE_OCI_MANIFEST, manifestBytes);
    await this.target.push(manifest, manifestBytes, options);
    await this.target.tag(manifest, cacheTag(key));
  }

  private pushConfig(signal?: AbortSignal): Promise<void> {
    const descriptor: Descriptor = { mediaType: MEDIA_TYPE_OCI_EMPTY, digest: EMPTY_JSON_CONFIG.digest, size: EMPTY_JSON_CONFIG.size };
    this.configPushed ??= this.target.push(descriptor, EMPTY_CONFIG_BYTES, signal ? { signal } : {}).catch((err: unknown) => {
      this.configPushed = undefined; // the next store tries again
      throw err;
    });
    return this.configPushed;
  }

  async place(hit: ZtocBlob, output: Target, signal?: AbortSignal): Promise<'mounted' | 'copied' | 'present'> {
    if (output === this.target) return 'present';
    if (output.mountFrom) {
      try {
        if (await output.mountFrom(hit.descriptor, this.target, signal ? { signal } : {})) return 'mounted';
      } catch (err) {
        if (signal?.aborted) throw err;
        // A refused mount is not a failure: the bytes are at hand.
      }
    }
    await output.push(hit.descriptor, hit.bytes, signal ? { signal } : {});
    return 'copied';
  }
}
