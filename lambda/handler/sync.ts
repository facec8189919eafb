// The scheduled (and on-demand) sync in AWS: the same planner as `soci-indexer sync`, over the same
// allow-list and settings as the indexer function, listing through the ECR API. It builds nothing itself:
// each `create` and `repair` becomes an asynchronous invocation of the indexer function with the ECR push
// event it already handles, so every image goes through the same retries, dead-letter queue, completion
// events and idempotency, at the pace its reserved concurrency allows. `prune` (opt-in) deletes here, by
// tag (BatchDeleteImage). One `SOCI Sync Completed` event and per-action metrics report the run.
import { randomUUID } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { ECRClient } from '@aws-sdk/client-ecr';
import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { Target } from '../oci/target.ts';
import { EcrApiListing, withBackoff } from '../registry/ecr-listing.ts';
import { DEFAULT_BUILD_OPTIONS } from '../soci/build.ts';
import { mapPool } from '../soci/pool.ts';
import { countActions, type PlanItem, planSync, pruneItem, type SyncAction } from '../soci/sync.ts';
import type { BuildOptions } from '../soci/types.ts';
import { awsError } from './aws-errors.ts';
import { COMPLETION_SOURCE } from './completion.ts';
import { ConfigError, configuredSettings, type HandlerConfig } from './config.ts';
import type { RegistryAccess } from './ecr-auth.ts';
import { accountOf, type LambdaContext } from './invoke.ts';
import type { AsyncInvoker } from './lambda-invoke.ts';
import { SYNC_METRIC } from './metric-names.ts';

export const SYNC_COMPLETED = 'SOCI Sync Completed';

type Env = Readonly<Record<string, string | undefined>>;

export interface SyncConfig {
  /** Name or ARN of the indexer function the work is fanned out to. */
  indexerFunction: string;
  /** Delete orphaned `<tag><suffix>` made by soci-indexer. */
  prune: boolean;
  /** At most this many invocations per run; the rest is left for the next run (and reported). */
  maxInvocations: number;
  /** Invocations in flight at once. */
  invokeConcurrency: number;
}

const FUNCTION = /^(arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:)?[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]+)?$/;

export function parseSyncConfig(env: Env): SyncConfig {
  const indexerFunction = env.SOCI_SYNC_FUNCTION?.trim() ?? '';
  if (!FUNCTION.test(indexerFunction))
    throw new ConfigError('SOCI_SYNC_FUNCTION', `expected the indexer function's name or ARN, got ${JSON.stringify(indexerFunction)}`);
  const prune = (env.SOCI_SYNC_PRUNE?.trim() || 'false').toLowerCase();
  if (!['true', 'false'].includes(prune))
    throw new ConfigError('SOCI_SYNC_PRUNE', `expected true or false, got ${JSON.stringify(env.SOCI_SYNC_PRUNE)}`);
  const max = env.SOCI_SYNC_MAX_INVOCATIONS?.trim() || '10000';
  if (!/^\d+$/.test(max) || Number(max) < 1 || Number(max) > 1_000_000)
    throw new ConfigError('SOCI_SYNC_MAX_INVOCATIONS', `expected a whole number from 1 to 1000000, got ${JSON.stringify(max)}`);
  return { indexerFunction, prune: prune === 'true', maxInvocations: Number(max), invokeConcurrency: 8 };
}

export interface SyncHandlerDeps {
  config: HandlerConfig;
  sync: SyncConfig;
  auth: { access(validUntil: number): Promise<RegistryAccess> };
  openTarget: (access: RegistryAccess, repository: string) => Target;
  ecr: () => ECRClient;
  invoke: AsyncInvoker;
  eventBridge: () => EventBridgeClient;
  logger: Logger;
  metrics: Metrics;
  /** Backoff of throttled ECR and Invoke calls (tests shorten it). @default 250 */
  backoffBaseMs?: number;
}

export interface SyncSummary {
  repositories: number;
  counts: Record<SyncAction, number>;
  /** Indexer invocations sent (create + repair), and those left for the next run by maxInvocations. */
  invoked: number;
  deferred: number;
  pruned: number;
  failures: { repository: string; tag: string; action: SyncAction; reason: string }[];
  calls: Record<string, number>;
  durationMs: number;
}

/** The ECR push event the indexer handles, for one planned image. */
export function pushEvent(item: PlanItem, account: string | undefined, region: string | undefined): Record<string, unknown> {
  return {
    version: '0',
    id: `soci-sync-${randomUUID()}`,
    'detail-type': 'ECR Image Action',
    source: 'aws.ecr',
    ...(account && { account }),
    time: new Date().toISOString(),
    ...(region && { region }),
    resources: [],
    detail: {
      result: 'SUCCESS',
      'repository-name': item.repository,
      'image-digest': item.digest,
      'action-type': 'PUSH',
      'image-tag': item.tag,
    },
  };
}

function buildOptions(config: HandlerConfig): BuildOptions {
  return {
    ...DEFAULT_BUILD_OPTIONS,
    ...configuredSettings(config),
  };
}

export function createSyncHandler(deps: SyncHandlerDeps): (event: unknown, context: LambdaContext) => Promise<SyncSummary> {
  const { config, sync, logger, metrics } = deps;
  return async (_event, context) => {
    const started = Date.now();
    const access = await deps.auth.access(Date.now() + context.getRemainingTimeInMillis());
    const listing = new EcrApiListing({
      registry: access.endpoint.host,
      client: deps.ecr(),
      target: (repository) => deps.openTarget(access, repository),
      ...(deps.backoffBaseMs !== undefined && { backoffBaseMs: deps.backoffBaseMs }),
    });
    const build = buildOptions(config);
    const prune = sync.prune && config.indexVersion === 'v2' && !config.inPlace;
    // The zTOC cache repository holds cache entries, not images: never a sync source.
    const excludeRepositories = config.ztocCache !== undefined ? [config.ztocCache] : [];
    const plan = await planSync(listing, { filters: config.filters, build, tagSuffix: config.tagSuffix, prune, excludeRepositories });
    logger.info('sync planned', {
      counts: countActions(plan.items),
      repositories: plan.repositories.length,
      calls: plan.calls,
      durationMs: plan.durationMs,
    });

    const failures: SyncSummary['failures'] = plan.items
      .filter((i) => i.action === 'error')
      .map((i) => ({ repository: i.repository, tag: i.tag, action: i.action, reason: i.reason }));
    for (const f of failures) logger.warn('sync could not plan', { repository: f.repository, tag: f.tag, reason: f.reason });

    const work = plan.items.filter((i) => i.action === 'create' || i.action === 'repair');
    const now = work.slice(0, sync.maxInvocations);
    const account = accountOf(context.invokedFunctionArn);
    let invoked = 0;
    await mapPool(now, sync.invokeConcurrency, async (item) => {
      try {
        await withBackoff(() => deps.invoke(sync.indexerFunction, pushEvent(item, account, process.env.AWS_REGION)), {
          baseMs: deps.backoffBaseMs,
        });
        invoked++;
        logger.info('sync invoked the indexer', { action: item.action, repository: item.repository, tag: item.tag, digest: item.digest });
      } catch (err) {
        const reason = (err as Error).message.split('\n')[0]!;
        failures.push({ repository: item.repository, tag: item.tag, action: item.action, reason });
        logger.error('sync could not invoke the indexer', { repository: item.repository, tag: item.tag, reason });
      }
    });
    if (work.length > now.length)
      logger.warn(`sync left ${work.length - now.length} image(s) for the next run (SOCI_SYNC_MAX_INVOCATIONS ${sync.maxInvocations})`);

    let pruned = 0;
    for (const item of plan.items.filter((i) => i.action === 'prune')) {
      try {
        const outcome = await pruneItem(listing, item);
        if (outcome.status === 'deleted') pruned++;
        logger.info('sync prune', {
          repository: item.repository,
          outputTag: item.outputTag,
          status: outcome.status,
          message: outcome.message,
        });
      } catch (err) {
        const reason = (err as Error).message.split('\n')[0]!;
        failures.push({ repository: item.repository, tag: item.tag, action: item.action, reason });
        logger.error('sync could not prune', { repository: item.repository, outputTag: item.outputTag, reason });
      }
    }

    const summary: SyncSummary = {
      repositories: plan.repositories.length,
      counts: countActions(plan.items),
      invoked,
      deferred: work.length - now.length,
      pruned,
      failures,
      calls: { ...listing.calls },
      durationMs: Date.now() - started,
    };
    for (const [action, count] of Object.entries(summary.counts)) {
      const single = metrics.singleMetric();
      single.addDimension('action', action);
      single.addMetric(SYNC_METRIC.items, MetricUnit.Count, count);
    }
    metrics.addMetric(SYNC_METRIC.invocations, MetricUnit.Count, invoked);
    metrics.addMetric(SYNC_METRIC.failures, MetricUnit.Count, failures.length);
    metrics.publishStoredMetrics();

    if (config.eventBus) {
      // Failures are listed up to 50, so the event stays far below EventBridge's 256 KB entry limit.
      const detail = { ...summary, failures: summary.failures.slice(0, 50), failureCount: summary.failures.length };
      try {
        await deps.eventBridge().send(
          new PutEventsCommand({
            Entries: [
              { EventBusName: config.eventBus, Source: COMPLETION_SOURCE, DetailType: SYNC_COMPLETED, Detail: JSON.stringify(detail) },
            ],
          }),
        );
      } catch (err) {
        logger.error('sync completion event not sent', { reason: awsError('events:PutEvents', err).message });
      }
    }
    logger.info('sync completed', { ...summary, failures: summary.failures.slice(0, 50) });
    return summary;
  };
}
