// Repository allow-list: `repo[:tag]` patterns where `*` matches any run of characters (including `/`,
// so `team/*` covers nested repositories), as AWS's SOCI Index Builder matches with fnmatch. A pattern
// without `:tag` accepts every tag. Shared by the Lambda handler (SOCI_REPOSITORY_FILTERS) and `sync`.

export interface RepositoryFilter {
  /** The pattern as written, for logs. */
  pattern: string;
  repository: RegExp;
  /** Undefined = any tag. */
  tag?: RegExp;
}

// ECR repository names (lower case, `/`-separated path components of [a-z0-9._-]) and tags
// ([A-Za-z0-9_.-], first character not `.` or `-`), each with `*` admitted as a wildcard.
const REPOSITORY_PATTERN = /^[a-z0-9*][a-z0-9._/*-]*$/;
const TAG_PATTERN = /^[A-Za-z0-9_*][A-Za-z0-9_.*-]{0,127}$/;

export class FilterSyntaxError extends Error {
  override readonly name = 'FilterSyntaxError';
}

function wildcard(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map((part) => part.replace(/[.\\^$+?()[\]{}|/-]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`);
}

/** Parses a comma list such as `app-*,ml/trainer:release-*`. */
export function parseFilters(list: string): RepositoryFilter[] {
  const filters: RepositoryFilter[] = [];
  for (const raw of list.split(',')) {
    const pattern = raw.trim();
    if (pattern === '') continue;
    const parts = pattern.split(':');
    if (parts.length > 2) throw new FilterSyntaxError(`${JSON.stringify(pattern)} has more than one ':'`);
    const [repository, tag] = parts as [string, string | undefined];
    if (!REPOSITORY_PATTERN.test(repository)) {
      throw new FilterSyntaxError(`${JSON.stringify(pattern)}: repository part must be lower-case [a-z0-9._/-] with * wildcards`);
    }
    if (tag !== undefined && !TAG_PATTERN.test(tag)) {
      throw new FilterSyntaxError(`${JSON.stringify(pattern)}: tag part must be [A-Za-z0-9_.-] with * wildcards`);
    }
    filters.push({ pattern, repository: wildcard(repository), tag: tag === undefined ? undefined : wildcard(tag) });
  }
  if (filters.length === 0) throw new FilterSyntaxError('no pattern given');
  return filters;
}

/** The first filter accepting this push, or undefined. `tag` undefined = untagged push. */
export function matchFilter(
  filters: readonly RepositoryFilter[],
  repository: string,
  tag: string | undefined,
): RepositoryFilter | undefined {
  return filters.find((f) => f.repository.test(repository) && (f.tag === undefined || (tag !== undefined && f.tag.test(tag))));
}
