// Output tags by policy, the deadline guard that keeps a build from starting to push or tag when it can
// no longer finish (a Lambda about to time out must leave nothing half-tagged), and the last look at the
// source tag before any tag is written (a build that a newer push overtook must not move a tag).
import { isTag } from '../oci/reference.ts';
import type { Target } from '../oci/target.ts';
import { isNotFound } from './errors.ts';
import { SociError, type TagPolicy } from './types.ts';

/** Time kept back for the pushes themselves: they start only with at least this much left. */
export const PUSH_MARGIN_MS = 2_000;
/** Time kept back for the tag writes (one manifest PUT each). */
export const TAG_MARGIN_MS = 500;

export interface OutputTags {
  tags: string[];
  /** Why there is no tag although the policy asks for one (the source was named by digest alone). */
  untagged?: string;
}

function checkTag(tag: string, what: string): string {
  // Registry tag grammar; layouts accept a superset of what matters here.
  if (!isTag(tag)) throw new SociError('permanent', `invalid output tag ${JSON.stringify(tag.slice(0, 140))} (${what})`);
  return tag;
}

/** The tags the v2 output gets: `<tag><suffix>`, the explicit tags, or the source tag itself (in place). */
export function outputTags(policy: TagPolicy, sourceTag: string | undefined): OutputTags {
  const untagged = 'the source was given by digest without a tag, so the output is not tagged (name output tags explicitly)';
  switch (policy.mode) {
    case 'suffix':
      if (policy.suffix === '') throw new SociError('permanent', 'the output tag suffix is empty: it would replace the source tag (ask for in-place explicitly)');
      if (sourceTag === undefined) return { tags: [], untagged };
      return { tags: [checkTag(`${sourceTag}${policy.suffix}`, `source tag ${sourceTag} + suffix ${policy.suffix}`)] };
    case 'tags':
      if (policy.tags.length === 0) throw new SociError('permanent', 'no output tag given');
      return { tags: [...new Set(policy.tags.map((t) => checkTag(t, 'explicit output tag')))] };
    case 'in-place':
      return sourceTag === undefined ? { tags: [], untagged } : { tags: [sourceTag] };
  }
}

/** Fails transiently (nothing done yet, a retry with more time can succeed) when past `deadline − margin`. */
export function checkDeadline(deadline: number | undefined, marginMs: number, before: string): void {
  if (deadline === undefined) return;
  const left = deadline - Date.now();
  if (left < marginMs) {
    throw new SociError('transient', `deadline: ${Math.max(0, left)} ms left, not enough to start ${before} (needs ${marginMs} ms); nothing was tagged`);
  }
}

/**
 * Why `tag` in `source` no longer names the indexed `digest` (a push moved it, or it was deleted while the
 * build ran), or undefined when it still does. Asked immediately before the first output tag is written:
 * tagging then would point `<tag>-soci` (or, in place, the tag itself) at an image the user has replaced.
 * Registries offer no conditional tag write, so what remains is the time of one resolve and one PUT.
 */
export async function sourceTagMoved(source: Target, tag: string, digest: string): Promise<string | undefined> {
  let current: string;
  try {
    current = (await source.resolve(tag)).digest;
  } catch (err) {
    if (isNotFound(err)) return `source tag ${tag} no longer exists (it named ${digest} when the build started)`;
    throw err;
  }
  return current === digest ? undefined : `source tag ${tag} now names ${current}, a newer push than the indexed ${digest}`;
}
