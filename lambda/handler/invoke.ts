// One invocation of the ECR push handler: validate, guard, check the tag is still current, build through
// the soci core within Lambda's remaining time, then report (logs, metrics, completion event) and map
// the outcome onto asynchronous-invocation semantics (throw = retry, return = done).
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { Context } from 'aws-lambda';
import type { Target } from '../oci/target.ts';
import { isThrottling, type RetryNotice } from '../registry/retry.ts';
import { isNotFound, toSociError } from '../soci/errors.ts';
import { type BuildEvent, type BuildOptions, type BuildResult, SociError } from '../soci/types.ts';
import { RepositoryZtocCache, type ZtocCache } from '../soci/ztoc-cache.ts';
import { isAwsThrottling } from './aws-errors.ts';
import { type Completion, completionFromResult, completionWithoutBuild, publishCompletion } from './completion.ts';
import { configuredSettings, type HandlerConfig } from './config.ts';
import type { RegistryAccess } from './ecr-auth.ts';
import { checkEvent, type EcrPush } from './event.ts';
import { skipReason } from './guards.ts';
import { InvocationMetrics } from './metrics.ts';

export type BuildFn = (source: Target, reference: string, options: BuildOptions) => Promise<BuildResult>;

/** What an invocation asks of its registry client: retries bounded by its deadline, and told about. */
export interface TargetHooks {
  /** Epoch ms: no backoff wait may end after it. */
  deadline: number;
  onRetry: (notice: RetryNotice) => void;
}

export interface HandlerDeps {
  config: HandlerConfig;
  /** The soci core (`buildSociIndex`); injectable so outcome mapping can be tested on its own. */
  build: BuildFn;
  auth: { access(validUntil: number): Promise<RegistryAccess> };
  openTarget: (access: RegistryAccess, repository: string, hooks?: TargetHooks) => Target;
  /** Created on first use, so a function without SOCI_EVENT_BUS never loads a client. */
  eventBridge: () => EventBridgeClient;
  logger: Logger;
  metrics: Metrics;
  now?: () => number;
}

/** What the invocation did; Lambda ignores it for asynchronous invocations, tests and people read it. */
export interface HandlerResult {
  outcome: 'created' | 'skipped' | 'failed' | 'ignored';
  /** A stable code: the guard, core status or failure kind. */
  reason?: string;
  message: string;
  outputTag?: string;
  outputDigest?: string;
}

export type LambdaContext = Pick<Context, 'getRemainingTimeInMillis'> & Partial<Context>;

/** The least time worth starting a build with; less means the function timeout is misconfigured. */
const MIN_BUILD_TIME_MS = 5_000;

function logBuildEvent(logger: Logger, event: BuildEvent): void {
  switch (event.type) {
    case 'resolved':
      logger.info('resolved source image', { mediaType: event.mediaType, resolvedDigest: event.digest, platforms: event.platforms });
      break;
    case 'layer-start':
      logger.debug('indexing layer', { platform: event.platform, layer: event.layer, size: event.size });
      break;
    case 'layer-done': {
      const r = event.result;
      const fields = { platform: event.platform, layer: r.digest, size: r.size, mediaType: r.mediaType };
      if (r.status === 'indexed')
        logger.info(r.ztoc === 'reused' ? 'layer zTOC reused from the cache' : 'layer indexed', {
          ...fields,
          ztoc: r.ztoc,
          ztocDigest: r.ztocDigest,
          ztocSize: r.ztocSize,
          spans: r.spans,
          durationMs: r.durationMs,
        });
      else logger.info('layer skipped', { ...fields, reason: r.reason, skipCode: r.skipCode, ...(r.code && { code: r.code }) });
      break;
    }
    case 'push':
      logger.debug('pushed', { what: event.what, pushedDigest: event.digest });
      break;
    case 'tag':
      logger.info('tagged', { outputTag: event.tag, outputDigest: event.digest });
      break;
    case 'log':
      logger[event.level](event.message);
      break;
    case 'layer-progress':
      break;
  }
}

/** The account of `arn:<partition>:lambda:<region>:<account>:function:<name>[:<qualifier>]`. */
export function accountOf(arn: string | undefined): string | undefined {
  const account = arn?.split(':')[4];
  return account && /^\d{12}$/.test(account) ? account : undefined;
}

export function createHandler(deps: HandlerDeps): (event: unknown, context: LambdaContext) => Promise<HandlerResult> {
  const { config, logger } = deps;
  const now = deps.now ?? Date.now;

  function buildOptions(deadline: number, signal: AbortSignal, ztocCache: ZtocCache | undefined): BuildOptions {
    return {
      ...configuredSettings(config),
      deadline,
      signal,
      onEvent: (event) => logBuildEvent(logger, event),
      ...(ztocCache && { ztocCache }),
    };
  }

  async function complete(completion: Completion): Promise<void> {
    if (config.eventBus === undefined) return;
    const eventId = await publishCompletion(deps.eventBridge(), config.eventBus, completion);
    logger.info('completion event sent', { detailType: completion.detailType, eventId, eventBus: config.eventBus });
  }

  /**
   * Skips an event whose tag has moved on (indexing it would point `<tag>-soci` at an older image) or is
   * gone. A deleted repository looks the same: docker-registry answers MANIFEST_UNKNOWN, ECR NAME_UNKNOWN.
   */
  async function staleTag(
    target: Target,
    push: EcrPush & { tag: string },
  ): Promise<{ status: 'superseded' | 'deleted'; reason: string } | undefined> {
    try {
      const current = await target.resolve(push.tag);
      if (current.digest === push.digest) return undefined;
      return { status: 'superseded', reason: `tag ${push.tag} now points at ${current.digest}: that push is indexed by its own event` };
    } catch (err) {
      if (isNotFound(err)) {
        return {
          status: 'deleted',
          reason: `tag ${push.tag} no longer exists (deleted, or its repository was): ${(err as Error).message}`,
        };
      }
      throw err;
    }
  }

  /** Builds, or says why not; never throws (failures come back classified). */
  async function attemptBuild(
    push: EcrPush & { tag: string },
    context: LambdaContext,
    metrics: InvocationMetrics,
    started: number,
  ): Promise<{ result: HandlerResult; completion: Completion; failure?: SociError }> {
    // Remaining time counts from now: adding it to `started` would subtract the time already spent twice.
    const deadline = now() + context.getRemainingTimeInMillis() - config.deadlineMarginMs;
    // Should the core overrun its deadline (a stuck read), abort its I/O halfway through the margin so
    // the failure can still be reported before Lambda kills the process.
    const controller = new AbortController();
    const hardStop = setTimeout(
      () => controller.abort(new SociError('transient', 'deadline exceeded: the build did not stop in time')),
      Math.max(0, deadline - now() + config.deadlineMarginMs / 2),
    );
    hardStop.unref?.();
    try {
      if (deadline - now() < MIN_BUILD_TIME_MS) {
        throw new SociError(
          'permanent',
          `only ${Math.max(0, deadline - now())} ms left after the ${config.deadlineMarginMs} ms safety margin: raise the function timeout`,
        );
      }
      const access = await deps.auth.access(deadline);
      const hooks: TargetHooks = {
        deadline,
        onRetry: (notice) => {
          if (notice.throttled) metrics.throttled();
          const fields = { retry: notice.retry, delayMs: notice.delayMs, error: notice.error.message };
          logger.warn(notice.throttled ? 'registry throttled a request, backing off' : 'registry request failed, retrying', fields);
        },
      };
      const target = deps.openTarget(access, push.repository, hooks);
      const stale = await staleTag(target, push);
      if (stale !== undefined) {
        logger.info(`skipped: ${stale.reason}`, { reason: stale.status });
        metrics.imageSkipped(stale.status);
        return {
          result: { outcome: 'skipped', reason: stale.status, message: stale.reason },
          completion: completionWithoutBuild(push, config.indexVersion, stale, now() - started),
        };
      }
      // Pinned to the pushed digest; the tag names the output, and the core checks it again right before
      // tagging (a push during the build makes the result `superseded`, like the check above).
      // The cache lives in the same registry as the image (same credentials); its failures never fail the build.
      const ztocCache =
        config.ztocCache !== undefined ? new RepositoryZtocCache(deps.openTarget(access, config.ztocCache, hooks)) : undefined;
      const result = await deps.build(target, `${push.tag}@${push.digest}`, buildOptions(deadline, controller.signal, ztocCache));
      metrics.build(result);
      const fields = {
        status: result.status,
        outputTag: result.output?.tags[0],
        outputDigest: result.output?.digest,
        bytesRead: result.bytesRead,
        ztocBytes: result.ztocBytes,
        ...(result.cache && { ztocCache: result.cache }),
      };
      if (result.status === 'created') {
        metrics.imageIndexed();
        logger.info(`SOCI index created: ${result.message}`, fields);
      } else {
        metrics.imageSkipped(result.status);
        logger.info(`skipped: ${result.message}`, { ...fields, reason: result.status });
      }
      return {
        result: {
          outcome: result.status === 'created' ? 'created' : 'skipped',
          reason: result.status,
          message: result.message,
          outputTag: result.output?.tags[0],
          outputDigest: result.output?.digest,
        },
        completion: completionFromResult(push, result, now() - started),
      };
    } catch (err) {
      const failure = toSociError(err, controller.signal);
      // A throttle that outlasted the retries (registry) or the SDK's own (ECR API) counts too.
      const cause = failure.cause ?? err;
      if (isThrottling(cause) || isAwsThrottling(cause)) metrics.throttled();
      metrics.imageFailed(failure.kind);
      logger.error(
        failure.kind === 'transient' ? `failed, will be retried: ${failure.message}` : `failed permanently: ${failure.message}`,
        { failure: failure.kind },
      );
      return {
        result: { outcome: 'failed', reason: failure.kind, message: failure.message },
        completion: completionWithoutBuild(push, config.indexVersion, { status: 'failed', error: failure }, now() - started),
        failure,
      };
    } finally {
      clearTimeout(hardStop);
    }
  }

  async function indexImage(
    push: EcrPush & { tag: string },
    context: LambdaContext,
    metrics: InvocationMetrics,
    started: number,
  ): Promise<HandlerResult> {
    const { result, completion, failure } = await attemptBuild(push, context, metrics, started);
    try {
      await complete(completion);
    } catch (err) {
      const publishFailure = toSociError(err);
      logger.error(`completion event not sent: ${publishFailure.message}`, { failure: publishFailure.kind });
      // Pipelines wait for this event, so a transient PutEvents failure retries the push event (the core's
      // idempotency makes the rerun cheap: it reports "already indexed"). A transient build failure is thrown anyway.
      if (failure?.kind !== 'transient' && publishFailure.kind === 'transient') throw publishFailure;
    }
    if (failure?.kind === 'transient') throw failure;
    return result;
  }

  return async function handle(event: unknown, context: LambdaContext): Promise<HandlerResult> {
    const started = now();
    const metrics = new InvocationMetrics(deps.metrics);
    if (context.awsRequestId !== undefined) logger.addContext(context as Context);
    try {
      const check = checkEvent(event);
      if (check.kind === 'foreign') {
        logger.info(`ignored: not a successful ECR push (${check.reason})`);
        metrics.imageSkipped('foreign-event');
        return { outcome: 'ignored', reason: 'foreign-event', message: check.reason };
      }
      if (check.kind === 'malformed') {
        logger.warn('dropped malformed ECR push event', { problems: check.problems });
        metrics.imageSkipped('invalid-event');
        return { outcome: 'ignored', reason: 'invalid-event', message: check.problems.join('; ') };
      }
      const push = check.push;
      logger.appendKeys({ repository: push.repository, digest: push.digest, tag: push.tag, eventId: push.eventId });
      metrics.context({ repository: push.repository, digest: push.digest, tag: push.tag });
      const skip = skipReason(push, config, accountOf(context.invokedFunctionArn));
      if (skip !== undefined) {
        logger.info(`skipped: ${skip.message}`, { reason: skip.code });
        metrics.imageSkipped(skip.code);
        return { outcome: 'skipped', reason: skip.code, message: skip.message };
      }
      return await indexImage(push as EcrPush & { tag: string }, context, metrics, started);
    } finally {
      metrics.duration(now() - started);
      metrics.flush();
      logger.resetKeys();
    }
  };
}
