// Output tags by policy (tag-policy.ts), the deadline guard that keeps a build from starting to push or tag when it can
// no longer finish (a Lambda about to time out must leave nothing half-tagged), and the last look at the
// source tag before any tag is written (a build that a newer push overtook must not move a tag).
import type { Target } from '../oci/target.ts';
import { isNotFound } from './errors.ts';
import { type OutputTags, type TagPolicy, tagPolicyEntry } from './tag-policy.ts';
import { SociError } from './types.ts';

/** Time kept back for the pushes themselves: they start only with at least this much left. */
export const PUSH_MARGIN_MS = 2_000;
/** Time kept back for the tag writes (one manifest PUT each). */
export const TAG_MARGIN_MS = 500;

export type { OutputTags } from './tag-policy.ts';

/** The tags the v2 output gets for `sourceTag`, as the policy's entry says. */
export function outputTags(policy: TagPolicy, sourceTag: string | undefined): OutputTags {
  return tagPolicyEntry(policy).outputTags(policy, sourceTag);
}

/** Fails transiently (nothing done yet, a retry with more time can succeed) when past `deadline − margin`. */
export function checkDeadline(deadline: number | undefined, marginMs: number, before: string): void {
  if (deadline === undefined) return;
  const left = deadline - Date.now();
  if (left < marginMs) {
    throw new SociError(
      'transient',
      `deadline: ${Math.max(0, left)} ms left, not enough to start ${before} (needs ${marginMs} ms); nothing was tagged`,
    );
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
