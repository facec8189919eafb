// A whole registry, as `sync` needs it: what repositories and tags exist, a Target per repository, and
// (optionally) removing one tag. Optional on purpose: a layout or a registry without listing is still a
// Target; only reconciling a whole registry needs this. Implemented by the OCI registry API
// (`/v2/_catalog`, tags list) and by the ECR API (DescribeRepositories, DescribeImages).
import type { Target } from './target.ts';

/** One tag of a repository; `digest` when the listing knows it without a manifest request (ECR API). */
export interface TagRecord {
  tag: string;
  digest?: string;
}

export interface RegistryListing {
  /** Where this registry is, for logs and errors (never contains credentials). */
  readonly description: string;
  /** Repository names, page after page. */
  repositories(signal?: AbortSignal): AsyncIterable<string>;
  /** The tags of one repository, page after page. */
  tags(repository: string, signal?: AbortSignal): AsyncIterable<TagRecord>;
  /** The Target for one repository. */
  target(repository: string): Target;
  /**
   * Removes `tag`, which names the manifest `digest`. Absent when the registry cannot delete.
   * `scope` says what goes: `tag` (ECR's BatchDeleteImage by tag: only the tag, the image stays if
   * other tags name it) or `digest` (the OCI API deletes by digest: every tag naming it goes too, so the
   * caller must first make sure no other tag names it).
   */
  readonly deletion?: {
    scope: 'tag' | 'digest';
    deleteTag(repository: string, tag: string, digest: string, signal?: AbortSignal): Promise<void>;
  };
  /** API calls made so far, by name (`catalog`, `tags/list`, `DescribeImages` …), for reports and tests. */
  readonly calls?: Readonly<Record<string, number>>;
}
