// The handler's configuration, read once from the environment at cold start. A malformed value is a
// deployment mistake: it must fail every invocation visibly (init error) rather than index with a
// silently substituted default, so parsing stops at the first bad variable and names it.
import { availableParallelism } from 'node:os';
import { parseFilters, type RepositoryFilter } from '../oci/filters.ts';
import { ECR_REPOSITORY_NAME_MAX, isRepositoryName } from '../oci/reference.ts';
import { DEFAULTS } from '../soci/defaults.ts';
import { configuredTagPolicy } from '../soci/tag-policy.ts';
import type { BuildOptions, IndexVersion } from '../soci/types.ts';

export interface HandlerConfig {
  /** A push must match one of these (default `*:*`, as AWS's SOCI Index Builder). */
  filters: RepositoryFilter[];
  minLayerSize: number;
  spanSize: number;
  indexVersion: IndexVersion;
  /** Output tag suffix (v2); tags ending with it are our own output and never indexed. */
  tagSuffix: string;
  /** Replace the source tag with the SOCI-enabled index instead of adding `<tag><suffix>`. */
  inPlace: boolean;
  platforms: 'all' | string[];
  /** Bus name or ARN for completion events; undefined = no events. */
  eventBus?: string;
  buildToolId: string;
  concurrency: number;
  /** Time kept back from Lambda's remaining time for the completion event and metrics. */
  deadlineMarginMs: number;
  /** Repository (in the pushed image's registry) holding the zTOC cache; undefined = no cache. */
  ztocCache?: string;
}

/** A configuration variable with a value the handler cannot use. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** The value of `name`, or undefined when unset or blank (blank = unset, as CDK/CloudFormation pass ''). */
function read(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function integer(env: Env, name: string, unit: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `expected a whole number of ${unit}, got ${JSON.stringify(raw)}`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${raw}`);
  return value;
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (/^(true|1|yes)$/i.test(raw)) return true;
  if (/^(false|0|no)$/i.test(raw)) return false;
  throw new ConfigError(name, `expected true or false, got ${JSON.stringify(raw)}`);
}

const PLATFORM = /^[a-z0-9_.-]+\/[a-z0-9_.-]+(\/[a-z0-9_.-]+)?$/;

function platforms(env: Env): 'all' | string[] {
  const raw = read(env, 'SOCI_PLATFORMS');
  if (raw === undefined) return DEFAULTS.platforms;
  if (raw.toLowerCase() === 'all') return 'all';
  const list = raw
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  for (const p of list) {
    if (!PLATFORM.test(p))
      throw new ConfigError('SOCI_PLATFORMS', `expected "all" or a comma list of os/arch[/variant], got ${JSON.stringify(p)}`);
  }
  if (list.length === 0) throw new ConfigError('SOCI_PLATFORMS', 'expected "all" or a comma list of os/arch[/variant]');
  return list;
}

// EventBridge bus names: 1-256 of [/.\-_A-Za-z0-9]; ARNs: arn:<partition>:events:<region>:<account>:event-bus/<name>.
const BUS_NAME = /^[/.\-_A-Za-z0-9]{1,256}$/;
const BUS_ARN = /^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:event-bus\/[/.\-_A-Za-z0-9]{1,256}$/;

// Tags are [A-Za-z0-9_.-], at most 128 characters; the suffix must leave room for a source tag.
const TAG_SUFFIX = /^[A-Za-z0-9_.-]{1,64}$/;

/** Parses and validates every variable; throws a ConfigError naming the first bad one. */
export function parseConfig(env: Env): HandlerConfig {
  const filtersRaw = env.SOCI_REPOSITORY_FILTERS;
  if (filtersRaw !== undefined && filtersRaw.trim() === '') {
    // An explicitly empty allow-list is far more likely a templating mistake than a wish to index everything.
    throw new ConfigError('SOCI_REPOSITORY_FILTERS', 'is empty: give repo[:tag] patterns, or leave it unset for *:*');
  }
  let filters: RepositoryFilter[];
  try {
    filters = parseFilters(filtersRaw ?? DEFAULTS.repositoryFilters);
  } catch (err) {
    throw new ConfigError('SOCI_REPOSITORY_FILTERS', (err as Error).message);
  }

  const indexVersion = (read(env, 'SOCI_INDEX_VERSION') ?? DEFAULTS.indexVersion).toLowerCase();
  if (indexVersion !== 'v1' && indexVersion !== 'v2') {
    throw new ConfigError('SOCI_INDEX_VERSION', `expected v2 or v1, got ${JSON.stringify(env.SOCI_INDEX_VERSION)}`);
  }

  const tagSuffix = read(env, 'SOCI_TAG_SUFFIX') ?? DEFAULTS.tagSuffix;
  if (!TAG_SUFFIX.test(tagSuffix)) {
    throw new ConfigError('SOCI_TAG_SUFFIX', `expected 1-64 characters of [A-Za-z0-9_.-], got ${JSON.stringify(tagSuffix)}`);
  }

  const eventBus = read(env, 'SOCI_EVENT_BUS');
  if (eventBus !== undefined && !BUS_NAME.test(eventBus) && !BUS_ARN.test(eventBus)) {
    throw new ConfigError('SOCI_EVENT_BUS', `expected an event bus name or ARN, got ${JSON.stringify(eventBus)}`);
  }

  const buildToolId = read(env, 'SOCI_BUILD_TOOL_ID') ?? DEFAULTS.buildToolId;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
  if (buildToolId.length > 256 || /[\u0000-\u001f\u007f]/.test(buildToolId)) {
    throw new ConfigError('SOCI_BUILD_TOOL_ID', 'must be at most 256 printable characters');
  }

  const ztocCache = read(env, 'SOCI_ZTOC_CACHE');
  // A registry address (`<account>.dkr.ecr.<region>.amazonaws.com/…`) is a valid-looking name but not what is meant.
  if (
    ztocCache !== undefined &&
    (!isRepositoryName(ztocCache, ECR_REPOSITORY_NAME_MAX) || /^[^/]*\.amazonaws\.com(\.cn)?\//.test(ztocCache))
  ) {
    throw new ConfigError(
      'SOCI_ZTOC_CACHE',
      `expected a repository name in the same registry (e.g. soci-indexer/ztoc-cache), got ${JSON.stringify(ztocCache.slice(0, 300))}`,
    );
  }

  return {
    filters,
    minLayerSize: integer(env, 'SOCI_MIN_LAYER_SIZE', 'bytes', DEFAULTS.minLayerSize, 0),
    // Tiny spans make a zTOC bigger than its layer; the upper bound keeps zinfo offsets in int32.
    spanSize: integer(env, 'SOCI_SPAN_SIZE', 'bytes', DEFAULTS.spanSize, 1024, 2 ** 31 - 1),
    indexVersion,
    tagSuffix,
    inPlace: boolean(env, 'SOCI_IN_PLACE', DEFAULTS.inPlace),
    platforms: platforms(env),
    eventBus,
    buildToolId,
    concurrency: integer(env, 'SOCI_CONCURRENCY', 'layers', availableParallelism(), 1, 64),
    deadlineMarginMs: integer(env, 'SOCI_DEADLINE_MARGIN_MS', 'milliseconds', DEFAULTS.deadlineMarginMs, 0, 600_000),
    ...(ztocCache !== undefined && { ztocCache }),
  };
}

/** The build settings both functions take from the configuration: the indexer and sync build alike. */
export type ConfiguredSettings = Pick<
  BuildOptions,
  'spanSize' | 'minLayerSize' | 'indexVersion' | 'platforms' | 'buildToolId' | 'concurrency' | 'tagPolicy'
>;

export function configuredSettings(config: HandlerConfig): ConfiguredSettings {
  return {
    spanSize: config.spanSize,
    minLayerSize: config.minLayerSize,
    indexVersion: config.indexVersion,
    platforms: config.platforms,
    buildToolId: config.buildToolId,
    concurrency: config.concurrency,
    tagPolicy: configuredTagPolicy(config),
  };
}
