// The tag policies, one entry each: everything the core, sync and the adapters ask of a policy is answered
// here, so adding a policy means adding its variant and its entry in this file (plus a CLI flag to choose it).
import { isTag } from '../oci/reference.ts';
import { SociError } from './types.ts';

/** How the output is tagged (v2). v1 indexes are found through the referrers API and get no tag. */
export type TagPolicy =
  | { mode: 'suffix'; suffix: string } // `<source tag><suffix>`, the default (`-soci`)
  | { mode: 'tags'; tags: string[] } // explicit output tags
  | { mode: 'in-place' }; // replace the source tag (asked for explicitly)

export interface OutputTags {
  tags: string[];
  /** Why there is no tag although the policy asks for one (the source was named by digest alone). */
  untagged?: string;
}

/** What the core asks of one policy. */
export interface TagPolicyEntry<P extends TagPolicy = TagPolicy> {
  /** The tags the v2 output of a build gets for `sourceTag` (undefined: the source was named by digest). */
  outputTags(policy: P, sourceTag: string | undefined): OutputTags;
  /** The output takes the source tag itself: the build warns before it moves the tag, sync treats it as the output. */
  replacesSource: boolean;
  /** The suffix this policy marks its output tags with, if it has its own (sync falls back to its configured one). */
  suffix(policy: P): string | undefined;
  /** The output tag sync derives for one source tag (`suffix`: the marker sync uses), or why sync cannot use the policy. */
  sync: { outputTag(policy: P, sourceTag: string, suffix: string): string } | { unsupported: string };
  /** Prune (deleting output tags whose source tag is gone) applies: the output has a separate tag. */
  prunable: boolean;
}

const UNTAGGED = 'the source was given by digest without a tag, so the output is not tagged (name output tags explicitly)';

function checkTag(tag: string, what: string): string {
  // Registry tag grammar; layouts accept a superset of what matters here.
  if (!isTag(tag)) throw new SociError('permanent', `invalid output tag ${JSON.stringify(tag.slice(0, 140))} (${what})`);
  return tag;
}

type Entries = { [M in TagPolicy['mode']]: TagPolicyEntry<Extract<TagPolicy, { mode: M }>> };

export const TAG_POLICIES: Entries = {
  suffix: {
    outputTags(policy, sourceTag) {
      if (policy.suffix === '')
        throw new SociError('permanent', 'the output tag suffix is empty: it would replace the source tag (ask for in-place explicitly)');
      if (sourceTag === undefined) return { tags: [], untagged: UNTAGGED };
      return { tags: [checkTag(`${sourceTag}${policy.suffix}`, `source tag ${sourceTag} + suffix ${policy.suffix}`)] };
    },
    replacesSource: false,
    suffix: (policy) => policy.suffix,
    sync: { outputTag: (_policy, sourceTag, suffix) => `${sourceTag}${suffix}` },
    prunable: true,
  },
  tags: {
    outputTags(policy) {
      if (policy.tags.length === 0) throw new SociError('permanent', 'no output tag given');
      return { tags: [...new Set(policy.tags.map((t) => checkTag(t, 'explicit output tag')))] };
    },
    replacesSource: false,
    suffix: () => undefined,
    sync: { unsupported: 'sync derives output tags from each source tag: use a tag suffix or in-place, not explicit output tags' },
    prunable: false,
  },
  'in-place': {
    outputTags: (_policy, sourceTag) => (sourceTag === undefined ? { tags: [], untagged: UNTAGGED } : { tags: [sourceTag] }),
    replacesSource: true,
    suffix: () => undefined,
    sync: { outputTag: (_policy, sourceTag) => sourceTag },
    prunable: false,
  },
};

/** The entry for `policy`, typed loosely so callers can pass the policy back without narrowing. */
export function tagPolicyEntry(policy: TagPolicy): TagPolicyEntry {
  return TAG_POLICIES[policy.mode] as TagPolicyEntry;
}

/** The policy the Lambda handlers configure: in place when asked, else the configured suffix. */
export function configuredTagPolicy(config: { inPlace: boolean; tagSuffix: string }): TagPolicy {
  return config.inPlace ? { mode: 'in-place' } : { mode: 'suffix', suffix: config.tagSuffix };
}
