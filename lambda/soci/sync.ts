// Reconciling a whole registry (`soci-indexer sync`, the scheduled sync in AWS): the push path is
// edge-triggered and misses what existed before it, lost events, moved and deleted tags; this is the
// level-triggered loop. `planSync` lists repositories and tags through a RegistryListing and decides one
// action per source tag from manifests alone; `runSync` carries the plan out, one image at a time, an
// image failing never stopping the others. Backend-neutral: listing and deleting come through the
// RegistryListing interface.
//
// Per mode (docs/design.md "Sync"):
// - v2 with a suffix: `up-to-date` when `<tag><suffix>` is what a build would make now; `create` when it
//   does not exist; `repair` when it is a SOCI-enabled index made by this tool for another digest (the tag
//   moved) or other settings; `skip` when it is something else (never overwritten). `prune` deletes
//   `<tag><suffix>` whose `<tag>` is gone, when it is ours.
// - v2 in place: the tag itself is the output. A tag naming a SOCI-enabled index is `up-to-date` (the
//   original image is no longer tagged: there is nothing to compare with); a plain image is `create`.
//   No repair (a moved tag names a new plain image: create) and no prune (no second tag).
// - v1: the index is attached to the image digest (`subject`), no tag. `create` when no v1 index with
//   these settings is attached to the tag's current digest (a moved tag is a new digest: create). No
//   prune: an index of a digest no longer tagged follows its image (ECR deletes referrers with their
//   subject), and deleting by subject is not something a tag listing shows.

import { matchFilter, type RepositoryFilter } from '../oci/filters.ts';
import { parseIndex, parseManifest } from '../oci/go-json.ts';
import {
  ANNOTATION_BUILD_TOOL_IDENTIFIER,
  ANNOTATION_IMAGE_MANIFEST_DIGEST,
  isIndex,
  SOCI_INDEX_ARTIFACT_TYPE_V2,
} from '../oci/media-types.ts';
import type { RegistryListing, TagRecord } from '../oci/registry.ts';
import type { Descriptor, Target } from '../oci/target.ts';
import { buildSociIndex, checkSociIndex } from './build.ts';
import { DEFAULTS } from './defaults.ts';
import { isMissingOrBroken, isNotFound, toSociError } from './errors.ts';
import { mapPool } from './pool.ts';
import { tagPolicyEntry } from './tag-policy.ts';
import { type BuildOptions, type BuildResult, SociError } from './types.ts';

export type SyncAction = 'up-to-date' | 'create' | 'repair' | 'prune' | 'skip' | 'error';
export const SYNC_ACTIONS: readonly SyncAction[] = ['up-to-date', 'create', 'repair', 'prune', 'skip', 'error'];

export interface PlanItem {
  repository: string;
  /** The source tag (for `prune`: the source tag that is gone; '' when a whole repository failed to list). */
  tag: string;
  action: SyncAction;
  /** One line: why this action. */
  reason: string;
  /** The digest the source tag names (absent for prune). */
  digest?: string;
  /** v2: `<tag><suffix>`, or the tag itself in place. */
  outputTag?: string;
  /** What `outputTag` names now (repair: the stale output; prune: what is deleted). */
  outputDigest?: string;
}

export interface SyncPlan {
  registry: string;
  /** Repositories the patterns selected, in listing order. */
  repositories: string[];
  items: PlanItem[];
  /** Listing API calls by name. */
  calls: Record<string, number>;
  durationMs: number;
}

export type SyncEvent =
  | { type: 'listed'; repository: string; tags: number }
  | { type: 'planned'; item: PlanItem }
  | { type: 'started'; item: PlanItem }
  | { type: 'finished'; item: PlanItem; outcome: ItemOutcome };

export interface SyncOptions {
  /** `repo[:tag]` patterns, as SOCI_REPOSITORY_FILTERS. */
  filters: readonly RepositoryFilter[];
  /** Settings of every build (tag policy `suffix` or `in-place`). */
  build: BuildOptions;
  /** Tags ending with this are our output, never sources (the suffix of a suffix policy; default `-soci`). */
  tagSuffix?: string;
  /** Repositories never synced whatever the patterns say (the zTOC cache repository). */
  excludeRepositories?: readonly string[];
  /** Plan (and carry out) `prune` actions. */
  prune?: boolean;
  /** Tags checked at once while planning. @default 8 */
  checkConcurrency?: number;
  signal?: AbortSignal;
  onEvent?: (event: SyncEvent) => void;
}

export interface ItemOutcome {
  ok: boolean;
  /** Build status (created, already-indexed, superseded …), `deleted`, or `failed`. */
  status: string;
  message: string;
  /** Whether a retry could help (failures only). */
  transient?: boolean;
  outputDigest?: string;
}

export interface SyncResult {
  plan: SyncPlan;
  results: { item: PlanItem; outcome: ItemOutcome }[];
  /** Items per planned action. */
  counts: Record<SyncAction, number>;
  failures: { repository: string; tag: string; action: SyncAction; reason: string }[];
  /** True when every planned action succeeded and nothing failed to plan. */
  ok: boolean;
}

/** The suffix that marks our output tags under these options. */
function suffixOf(options: SyncOptions): string {
  const { tagPolicy } = options.build;
  return tagPolicyEntry(tagPolicy).suffix(tagPolicy) ?? options.tagSuffix ?? DEFAULTS.tagSuffix;
}

function validate(options: SyncOptions): void {
  const { sync } = tagPolicyEntry(options.build.tagPolicy);
  if ('unsupported' in sync) throw new SociError('permanent', sync.unsupported);
  if (suffixOf(options) === '') throw new SociError('permanent', 'the output tag suffix is empty');
  if (options.filters.length === 0) throw new SociError('permanent', 'no repository pattern given');
}

async function resolveOrUndefined(target: Target, reference: string): Promise<Descriptor | undefined> {
  try {
    return await target.resolve(reference);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/**
 * True when `desc` is a SOCI-enabled image index made by soci-indexer: an index whose SOCI v2 entries are
 * bound to image manifests (the image-manifest-digest annotation convert writes), the first of which is
 * a SOCI v2 index manifest whose build tool is `buildToolId` or any soci-indexer version. Anything else
 * under an output tag (a user's own `foo-soci` image, another tool's index) is not ours.
 */
export async function isOwnOutput(target: Target, desc: Descriptor, buildToolId: string): Promise<boolean> {
  if (!isIndex(desc.mediaType)) return false;
  try {
    const entries = parseIndex(await target.fetchBytes(desc)).manifests ?? [];
    const soci = entries.filter((d) => d.artifactType === SOCI_INDEX_ARTIFACT_TYPE_V2);
    if (soci.length === 0 || soci.some((d) => d.annotations?.[ANNOTATION_IMAGE_MANIFEST_DIGEST] === undefined)) return false;
    const manifest = parseManifest(await target.fetchBytes(soci[0]!));
    const tool = manifest.annotations?.[ANNOTATION_BUILD_TOOL_IDENTIFIER];
    return (
      manifest.config.mediaType === SOCI_INDEX_ARTIFACT_TYPE_V2 && (tool === buildToolId || (tool?.startsWith('soci-indexer ') ?? false))
    );
  } catch (err) {
    if (isMissingOrBroken(err)) return false;
    throw err;
  }
}

function oneLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0]!;
}

/** Decides the action for one source tag. */
async function planTag(target: Target, repository: string, record: TagRecord, options: SyncOptions): Promise<PlanItem> {
  const { tag } = record;
  const { build } = options;
  const base = { repository, tag };
  try {
    const check = await checkSociIndex(target, record.digest ? `${tag}@${record.digest}` : tag, { ...build, onEvent: undefined });
    const digest = check.source.digest;
    const policy = tagPolicyEntry(build.tagPolicy);
    const inPlace = policy.replacesSource;
    const outputTag =
      build.indexVersion === 'v2' && 'outputTag' in policy.sync
        ? policy.sync.outputTag(build.tagPolicy, tag, suffixOf(options))
        : undefined;
    const common = { ...base, digest, ...(outputTag !== undefined && { outputTag }) };
    switch (check.status) {
      case 'indexed':
        if (check.sociEnabled && !inPlace)
          return { ...common, action: 'skip', reason: `${tag} is itself a SOCI-enabled image: ${check.message}` };
        return { ...common, action: 'up-to-date', reason: check.message, ...(check.output && { outputDigest: check.output.digest }) };
      case 'not-an-image':
      case 'no-eligible-layers':
        return { ...common, action: 'skip', reason: check.message };
      case 'missing':
        break;
    }
    if (outputTag === undefined || inPlace)
      return {
        ...common,
        action: 'create',
        reason: inPlace ? `${tag} names an image without a SOCI index` : `no v1 SOCI index with these settings is attached to ${digest}`,
      };
    const existing = await resolveOrUndefined(target, outputTag);
    if (!existing) return { ...common, action: 'create', reason: `${outputTag} does not exist` };
    if (await isOwnOutput(target, existing, build.buildToolId)) {
      return {
        ...common,
        action: 'repair',
        outputDigest: existing.digest,
        reason: `${outputTag} is a SOCI index for another digest than ${digest} or other settings`,
      };
    }
    return {
      ...common,
      action: 'skip',
      outputDigest: existing.digest,
      reason: `${outputTag} exists and was not made by soci-indexer: left alone`,
    };
  } catch (err) {
    return { ...base, action: 'error', reason: oneLine(toSociError(err)) };
  }
}

/** Digests of every tag (from the listing, or resolved): what the prune guard compares. */
async function tagDigests(target: Target, records: TagRecord[], options: SyncOptions): Promise<Map<string, string | undefined>> {
  const digests = new Map<string, string | undefined>();
  await mapPool(
    records,
    options.checkConcurrency ?? 8,
    async (r) => {
      digests.set(r.tag, r.digest ?? (await resolveOrUndefined(target, r.tag))?.digest);
    },
    options.signal,
  );
  return digests;
}

/** `prune` candidates: `<source><suffix>` tags whose source tag is gone, in scope of the patterns. */
async function planPrune(
  listing: RegistryListing,
  target: Target,
  repository: string,
  records: TagRecord[],
  options: SyncOptions,
): Promise<PlanItem[]> {
  const suffix = suffixOf(options);
  const present = new Set(records.map((r) => r.tag));
  const orphans = records.filter((r) => {
    const source = r.tag.slice(0, -suffix.length);
    return (
      r.tag.endsWith(suffix) && source !== '' && !present.has(source) && matchFilter(options.filters, repository, source) !== undefined
    );
  });
  if (orphans.length === 0) return [];
  // Deleting by digest removes every tag naming it: only when no other tag does.
  const digests = listing.deletion?.scope === 'digest' ? await tagDigests(target, records, options) : undefined;
  const items: PlanItem[] = [];
  for (const orphan of orphans) {
    const source = orphan.tag.slice(0, -suffix.length);
    const base = { repository, tag: source, outputTag: orphan.tag };
    try {
      const desc = await resolveOrUndefined(target, orphan.tag);
      if (!desc) continue; // deleted meanwhile
      if (!(await isOwnOutput(target, desc, options.build.buildToolId))) {
        items.push({
          ...base,
          action: 'skip',
          outputDigest: desc.digest,
          reason: `${orphan.tag} was not made by soci-indexer: left alone`,
        });
        continue;
      }
      if (!listing.deletion) {
        items.push({ ...base, action: 'skip', outputDigest: desc.digest, reason: `${listing.description} offers no way to delete a tag` });
        continue;
      }
      const sharing = digests ? [...digests].filter(([tag, d]) => tag !== orphan.tag && d === desc.digest).map(([tag]) => tag) : [];
      if (sharing.length > 0) {
        items.push({
          ...base,
          action: 'skip',
          outputDigest: desc.digest,
          reason: `${orphan.tag} names ${desc.digest}, also tagged ${sharing.join(', ')}; this registry deletes by digest, which would remove those tags too`,
        });
        continue;
      }
      items.push({ ...base, action: 'prune', outputDigest: desc.digest, reason: `source tag ${source} no longer exists` });
    } catch (err) {
      items.push({ ...base, action: 'error', reason: oneLine(toSociError(err)) });
    }
  }
  return items;
}

async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Lists the registry and decides one action per source tag (and per orphaned output, with `prune`). */
export async function planSync(listing: RegistryListing, options: SyncOptions): Promise<SyncPlan> {
  validate(options);
  const started = Date.now();
  const suffix = suffixOf(options);
  const emit = (e: SyncEvent) => options.onEvent?.(e);
  const repositories: string[] = [];
  const items: PlanItem[] = [];
  let all: string[];
  try {
    all = await collect(listing.repositories(options.signal));
  } catch (err) {
    throw toSociError(err, options.signal);
  }
  for (const repository of all) {
    if (!options.filters.some((f) => f.repository.test(repository)) || options.excludeRepositories?.includes(repository)) continue;
    repositories.push(repository);
    let records: TagRecord[];
    try {
      records = await collect(listing.tags(repository, options.signal));
    } catch (err) {
      const item: PlanItem = { repository, tag: '', action: 'error', reason: `listing tags: ${oneLine(toSociError(err, options.signal))}` };
      items.push(item);
      emit({ type: 'planned', item });
      continue;
    }
    emit({ type: 'listed', repository, tags: records.length });
    const target = listing.target(repository);
    const sources = records.filter((r) => !r.tag.endsWith(suffix) && matchFilter(options.filters, repository, r.tag) !== undefined);
    const planned = await mapPool(
      sources,
      options.checkConcurrency ?? 8,
      async (record) => {
        const item = await planTag(target, repository, record, options);
        emit({ type: 'planned', item });
        return item;
      },
      options.signal,
    );
    items.push(...planned);
    const prunable = options.prune === true && options.build.indexVersion === 'v2' && tagPolicyEntry(options.build.tagPolicy).prunable;
    if (prunable) {
      const pruned = await planPrune(listing, target, repository, records, options);
      for (const item of pruned) emit({ type: 'planned', item });
      items.push(...pruned);
    }
  }
  return { registry: listing.description, repositories, items, calls: { ...(listing.calls ?? {}) }, durationMs: Date.now() - started };
}

export function countActions(items: readonly PlanItem[]): Record<SyncAction, number> {
  const counts = Object.fromEntries(SYNC_ACTIONS.map((a) => [a, 0])) as Record<SyncAction, number>;
  for (const item of items) counts[item.action]++;
  return counts;
}

/** Deletes an orphaned output after checking again that its source is still gone and it is unchanged. */
export async function pruneItem(listing: RegistryListing, item: PlanItem, signal?: AbortSignal): Promise<ItemOutcome> {
  const target = listing.target(item.repository);
  if (await resolveOrUndefined(target, item.tag))
    return { ok: true, status: 'kept', message: `source tag ${item.tag} exists again: ${item.outputTag} kept` };
  const current = await resolveOrUndefined(target, item.outputTag!);
  if (!current) return { ok: true, status: 'deleted', message: `${item.outputTag} was already gone` };
  if (current.digest !== item.outputDigest)
    return { ok: true, status: 'kept', message: `${item.outputTag} changed since planning (now ${current.digest}): kept` };
  await listing.deletion!.deleteTag(item.repository, item.outputTag!, current.digest, signal);
  return { ok: true, status: 'deleted', message: `deleted ${item.outputTag} (${current.digest})` };
}

function buildOutcome(result: BuildResult): ItemOutcome {
  return { ok: true, status: result.status, message: result.message, ...(result.output && { outputDigest: result.output.digest }) };
}

/**
 * Carries out the plan's `create`, `repair` and `prune` actions, one image at a time (each build already
 * uses `build.concurrency` layers at once). A failing image is recorded and the next one starts.
 */
export async function runSync(listing: RegistryListing, plan: SyncPlan, options: SyncOptions): Promise<SyncResult> {
  validate(options);
  const emit = (e: SyncEvent) => options.onEvent?.(e);
  const results: SyncResult['results'] = [];
  for (const item of plan.items) {
    if (item.action !== 'create' && item.action !== 'repair' && item.action !== 'prune') continue;
    options.signal?.throwIfAborted();
    emit({ type: 'started', item });
    let outcome: ItemOutcome;
    try {
      outcome =
        item.action === 'prune'
          ? await pruneItem(listing, item, options.signal)
          : buildOutcome(
              await buildSociIndex(listing.target(item.repository), `${item.tag}@${item.digest}`, {
                ...options.build,
                signal: options.signal,
              }),
            );
    } catch (err) {
      if (options.signal?.aborted) throw err;
      const failure = toSociError(err);
      outcome = { ok: false, status: 'failed', message: oneLine(failure), transient: failure.kind === 'transient' };
    }
    results.push({ item, outcome });
    emit({ type: 'finished', item, outcome });
  }
  return summarize(plan, results);
}

/** Counts and failures of a plan and what was done with it (also for a dry run: no results). */
export function summarize(plan: SyncPlan, results: SyncResult['results']): SyncResult {
  const failures = [
    ...plan.items
      .filter((i) => i.action === 'error')
      .map((i) => ({ repository: i.repository, tag: i.tag, action: i.action, reason: i.reason })),
    ...results
      .filter((r) => !r.outcome.ok)
      .map((r) => ({ repository: r.item.repository, tag: r.item.tag, action: r.item.action, reason: r.outcome.message })),
  ];
  return { plan, results, counts: countActions(plan.items), failures, ok: failures.length === 0 };
}
