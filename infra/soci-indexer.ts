// SociIndexer: the whole installation of the indexer in one construct. ECR push events are filtered by an
// EventBridge rule (so pushes outside the allow-list never start the function), the function's code is
// the bundle prebuilt into dist/lambda (nothing is bundled at synth), and every failure path ends in an
// encrypted dead-letter queue watched by an alarm. Props are validated with the handler's own parser, so
// a configuration the function would reject at cold start fails at synth instead.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Annotations, Duration, Names, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ConfigError, parseConfig } from '../lambda/handler/config.ts';
import { DEFAULT_METRICS_NAMESPACE, METRIC } from '../lambda/handler/metric-names.ts';
import { SOCI_INDEX_ARTIFACT_TYPE_V1, SOCI_INDEX_ARTIFACT_TYPE_V2 } from '../lambda/oci/media-types.ts';
import { DEFAULTS } from '../lambda/soci/defaults.ts';

/**
 * The function's code, built with the package (`scripts/build.mjs lambda`): the handler and its layer and
 * TOC workers, minified, the AWS SDK included. The same path from infra/ (this repository) and from dist/
 * (the installed package, where this module is dist/cdk.mjs). A prebuilt asset means a consumer's synth
 * bundles nothing (no esbuild, no Docker) and its hash is the same on every machine.
 */
function lambdaAssetDir(): string {
  const dir = fileURLToPath(new URL('../dist/lambda', import.meta.url));
  if (!existsSync(join(dir, 'index.mjs'))) {
    throw new Error(`soci-indexer: the Lambda bundle ${dir} is missing; build it with \`node scripts/build.mjs lambda\` (npm ci runs it)`);
  }
  return dir;
}

/** One of the metric names the handler emits (namespace `SociIndexer`, dimension `service`). */
export type SociIndexerMetricName = (typeof METRIC)[keyof typeof METRIC];

/** A property value the construct cannot deploy; the message names the property. */
export class SociIndexerConfigError extends Error {
  override readonly name = 'SociIndexerConfigError';
}

export interface SociIndexerProps {
  /**
   * The allow-list: pushes to these repositories are indexed.
   *
   * Each entry is `repository[:tag]` where `*` matches any run of characters (including `/`): an exact
   * name (`ml/trainer`), a prefix (`team-*`), any wildcard (`*-service`), or `*` for every repository.
   * Without `:tag` every tag is accepted; with it only matching tags (`app:release-*`). The same list goes
   * to the handler, which re-checks it.
   */
  readonly repositories: string[];

  /**
   * Layers whose blob is smaller than this (bytes) get no zTOC.
   *
   * @default 10485760 (10 MiB, as soci-snapshotter)
   */
  readonly minLayerSize?: number;

  /**
   * Uncompressed bytes between two checkpoints of a zTOC.
   *
   * @default 4194304 (4 MiB, as soci-snapshotter)
   */
  readonly spanSize?: number;

  /**
   * The SOCI index manifest version.
   *
   * @default 'v2'
   */
  readonly indexVersion?: 'v1' | 'v2';

  /**
   * The SOCI-enabled image is tagged `<source tag><tagSuffix>`.
   *
   * Pushes of tags ending with it are the indexer's own output and never reach the function.
   *
   * @default '-soci'
   */
  readonly tagSuffix?: string;

  /**
   * Replace the source tag with the SOCI-enabled image instead of adding a suffixed tag.
   *
   * @default false
   */
  readonly inPlace?: boolean;

  /**
   * The platforms to index: `'all'`, or platforms such as `linux/amd64`, `linux/arm64/v8`.
   *
   * @default 'all'
   */
  readonly platforms?: 'all' | string[];

  /**
   * The function's memory (MB).
   *
   * Lambda allots one vCPU per 1769 MB, so 3538 MB gives the layer workers 2 vCPUs.
   *
   * @default 3538
   */
  readonly memorySize?: number;

  /**
   * The indexer function's timeout.
   *
   * @default Duration.minutes(15)
   */
  readonly timeout?: Duration;

  /**
   * The bus that receives a completion event per image.
   *
   * @default - the account's default bus
   */
  readonly eventBus?: events.IEventBus;

  /**
   * Whether to publish completion events; `false` also grants no `events:PutEvents`.
   *
   * @default true
   */
  readonly completionEvents?: boolean;

  /**
   * The topic that receives the alarms' ALARM and OK notifications.
   *
   * @default - alarms without actions
   */
  readonly alarmTopic?: sns.ITopic;

  /**
   * How long the functions' log groups keep their logs.
   *
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * The reserved concurrency of the indexer function, which caps concurrent builds (and registry load).
   *
   * @default - unreserved
   */
  readonly reservedConcurrency?: number;

  /**
   * The build tool written into zTOCs and the index annotation.
   *
   * @default - `soci-indexer <version>`
   */
  readonly buildToolId?: string;

  /**
   * Customer managed keys of encrypted repositories; the functions may decrypt with them.
   *
   * @default - none
   */
  readonly kmsKeys?: kms.IKey[];

  /**
   * The Powertools log level.
   *
   * @default 'INFO'
   */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

  /**
   * The Powertools service name: the `service` dimension of every metric and the `service` log field.
   *
   * @default - unique per construct instance, so two installations in one account keep separate metrics
   */
  readonly serviceName?: string;

  /**
   * How long EventBridge and Lambda keep retrying an event before it goes to the dead-letter queue.
   *
   * @default Duration.hours(6)
   */
  readonly maxEventAge?: Duration;

  /**
   * The zTOC cache (`SOCI_ZTOC_CACHE`): a repository where every zTOC built is kept.
   *
   * A layer shared by many images is then read once per registry, and a build stopped at its deadline
   * resumes on retry. `false` turns it off; an existing repository (in the account and region of the
   * pushes) is used as it is.
   *
   * @default - a new repository, AES-256 encrypted (like ECR's default, so zTOCs can be mounted into
   * repositories with default encryption), entries expiring `ztocCacheExpiry` after they were pushed
   */
  readonly ztocCache?: ecr.IRepository | false;

  /**
   * How long a cache entry lives after it was pushed, in the repository the construct creates.
   *
   * A lifecycle rule, in whole days; an expired entry only costs one rebuild of its zTOC.
   *
   * @default Duration.days(30)
   */
  readonly ztocCacheExpiry?: Duration;

  /**
   * When the sync function reconciles the allow-listed repositories (README "Backfill existing images").
   *
   * It lists them through the ECR API and invokes the indexer for every image without an up-to-date SOCI
   * index, as if it had just been pushed. `'off'`: no schedule (the function is still there to run on
   * demand).
   *
   * @default events.Schedule.rate(Duration.days(1))
   */
  readonly syncSchedule?: events.Schedule | 'off';

  /**
   * Whether the sync also deletes `<tag><suffix>` tags made by soci-indexer whose source tag is gone.
   *
   * Only then does the sync function get `ecr:BatchDeleteImage`, on the allow-listed repositories.
   *
   * @default false
   */
  readonly syncPrune?: boolean;

  /**
   * The most indexer invocations per sync run; the rest waits for the next run.
   *
   * @default 10000
   */
  readonly syncMaxInvocations?: number;
}

/** A parsed allow-list entry. */
export interface RepositoryFilterEntry {
  /** Repository pattern with `*` wildcards (runs of `*` collapsed to one). */
  readonly repository: string;
  /** Tag pattern, or undefined for every tag (and untagged pushes). */
  readonly tag?: string;
}

// Lambda retries a failed asynchronous invocation at most twice; EventBridge gets the same bound.
const RETRY_ATTEMPTS = 2;
// EventBridge's default quota for a rule's pattern; it can be raised to 4096 on request.
const EVENT_PATTERN_DEFAULT_QUOTA = 2048;
const EVENT_PATTERN_MAX = 4096;

/** Splits `repository[:tag]` entries, collapsing `**` (EventBridge wildcards reject consecutive stars). */
export function parseRepositoryFilters(entries: readonly string[]): RepositoryFilterEntry[] {
  return entries.map((entry) => {
    const [repository = '', tag] = entry.trim().split(':');
    const collapse = (pattern: string) => pattern.replace(/\*+/g, '*');
    return tag === undefined ? { repository: collapse(repository) } : { repository: collapse(repository), tag: collapse(tag) };
  });
}

/** The EventBridge matcher for one `*` pattern: exact string, prefix, or wildcard. */
function patternMatcher(pattern: string): string[] {
  const star = pattern.indexOf('*');
  if (star === -1) return events.Match.exactString(pattern);
  if (star === pattern.length - 1) return events.Match.prefix(pattern.slice(0, -1));
  return events.Match.wildcard(pattern);
}

/**
 * How a tag pattern relates to our output tags `<tag><suffix>`: `disjoint` (it never matches one),
 * `overlapping` (it matches some; a pattern cannot also exclude them, so the handler skips those), or
 * `only-output` (everything it matches is our output: a configuration mistake).
 */
export function tagPatternVersusSuffix(tag: string, suffix: string): 'disjoint' | 'overlapping' | 'only-output' {
  const literalEnd = tag.slice(tag.lastIndexOf('*') + 1); // whole tag when there is no `*`
  if (literalEnd.endsWith(suffix)) return 'only-output';
  if (tag.includes('*') && suffix.endsWith(literalEnd)) return 'overlapping';
  return 'disjoint';
}

/**
 * The `detail` part of the rule's pattern. Each allow-list branch is `repository AND tag`; branches are
 * joined with `$or` (a single branch is inlined). Entries without a tag pattern share one branch whose
 * tag condition is "absent or not ending with the suffix", so untagged pushes still reach the handler.
 * A tag pattern and the suffix exclusion cannot be ANDed on one field, so tagged branches rely on the
 * pattern itself (see tagPatternVersusSuffix).
 */
export function pushDetailPattern(filters: readonly RepositoryFilterEntry[], tagSuffix: string): Record<string, unknown> {
  const notOurTag = events.Match.anythingButSuffix(tagSuffix);
  const untaggedRepos = filters.filter((f) => f.tag === undefined).map((f) => f.repository);
  const everyRepo = untaggedRepos.includes('*');
  const branches: Record<string, unknown>[] = [];
  if (untaggedRepos.length > 0) {
    branches.push({
      ...(everyRepo ? {} : { 'repository-name': events.Match.anyOf(...unique(untaggedRepos).map(patternMatcher)) }),
      'image-tag': events.Match.anyOf(notOurTag, events.Match.doesNotExist()),
    });
  }
  if (!everyRepo) {
    // Tag patterns grouped per repository pattern; a repository already accepted with every tag needs none.
    const tagsByRepo = new Map<string, string[]>();
    for (const { repository, tag } of filters) {
      if (tag === undefined || untaggedRepos.includes(repository)) continue;
      tagsByRepo.set(repository, unique([...(tagsByRepo.get(repository) ?? []), tag]));
    }
    for (const [repository, tags] of tagsByRepo) {
      // `*` alone means "any tag", which is exactly what the suffix exclusion matches.
      const tagMatchers = tags.includes('*') ? notOurTag : events.Match.anyOf(...tags.map(patternMatcher));
      branches.push({
        ...(repository === '*' ? {} : { 'repository-name': patternMatcher(repository) }),
        'image-tag': tagMatchers,
      });
    }
  }
  return {
    'action-type': ['PUSH'],
    result: ['SUCCESS'],
    // SOCI index manifests we push by digest (v1 and v2) carry these artifact types.
    'artifact-media-type': events.Match.anyOf(
      events.Match.anythingBut(SOCI_INDEX_ARTIFACT_TYPE_V1, SOCI_INDEX_ARTIFACT_TYPE_V2),
      events.Match.doesNotExist(),
    ),
    ...(branches.length === 1 ? branches[0] : { $or: branches }),
  };
}

/** IAM resource ARN patterns for the allow-listed repositories (IAM's `*` also spans `/`). */
export function repositoryArns(stack: Stack, filters: readonly RepositoryFilterEntry[]): string[] {
  const patterns = unique(filters.map((f) => f.repository));
  const scoped = patterns.includes('*') ? ['*'] : patterns;
  return scoped.map((resourceName) => stack.formatArn({ service: 'ecr', resource: 'repository', resourceName }));
}

function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}

/**
 * The defaults of the props that only the construct has (the build's own defaults are DEFAULTS, imported
 * from the core); the `@default` tags of SociIndexerProps say the same.
 */
const CONSTRUCT_DEFAULTS = {
  memorySize: 3538,
  timeout: Duration.minutes(15),
  maxEventAge: Duration.hours(6),
  logRetention: logs.RetentionDays.ONE_MONTH,
  logLevel: 'INFO',
  ztocCacheExpiry: Duration.days(30),
  syncSchedule: events.Schedule.rate(Duration.days(1)),
  syncMaxInvocations: 10_000,
} as const;

/**
 * Builds SOCI indexes for the images pushed to the allow-listed ECR repositories: the indexer function
 * behind an EventBridge rule, a scheduled sync function for images pushed before (or missed), a zTOC
 * cache repository, an encrypted dead-letter queue and alarms.
 */
export class SociIndexer extends Construct {
  /** The indexer function. */
  readonly function: lambda.IFunction;
  /** The rule that sends allow-listed ECR pushes to the indexer function. */
  readonly rule: events.IRule;
  /** Events that failed every retry, from EventBridge delivery or from either function itself. */
  readonly deadLetterQueue: sqs.IQueue;
  /** The indexer function's log group. */
  readonly logGroup: logs.ILogGroup;
  /** Function errors, throttles, dead letters, and images the handler reported as failed. */
  readonly alarms: cloudwatch.IAlarm[];
  /** The `service` dimension of the handler's metrics. */
  readonly serviceName: string;
  /** The allow-list as parsed from `repositories`. */
  readonly repositoryFilters: RepositoryFilterEntry[];
  /** The zTOC cache repository (created or given), or undefined when the cache is off. */
  readonly ztocCache?: ecr.IRepository;
  /** The sync function: plans over the allow-list and invokes the indexer for what is missing or stale. */
  readonly syncFunction: lambda.IFunction;
  /** The schedule that runs the sync; undefined with `syncSchedule: 'off'`. */
  readonly syncRule?: events.IRule;

  constructor(scope: Construct, id: string, props: SociIndexerProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.serviceName = props.serviceName ?? Names.uniqueResourceName(this, { maxLength: 64, separator: '-' });
    const environment = handlerEnvironment(props, this.serviceName);
    validateWithHandlerParser(environment);
    this.repositoryFilters = parseRepositoryFilters(props.repositories);
    const tagSuffix = props.tagSuffix ?? DEFAULTS.tagSuffix;
    this.checkTagPatterns(tagSuffix);

    const deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    this.deadLetterQueue = deadLetterQueue;
    Validations.of(deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself the dead-letter queue of the rule target and the function; a DLQ of a DLQ would only move the same messages.',
    });

    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? CONSTRUCT_DEFAULTS.logRetention,
      // Retention already bounds what is kept; a retained group would outlive `cdk destroy` as an orphan.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.ztocCache = this.createZtocCache(props);

    // An own role instead of the default one: AWSLambdaBasicExecutionRole grants logs on every group.
    const role = new iam.Role(this, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    this.logGroup.grantWrite(role);

    const maxEventAge = props.maxEventAge ?? CONSTRUCT_DEFAULTS.maxEventAge;
    const completionBus =
      props.completionEvents === false ? undefined : (props.eventBus ?? events.EventBus.fromEventBusName(this, 'DefaultBus', 'default'));

    this.function = new lambda.Function(this, 'Function', {
      code: lambda.Code.fromAsset(lambdaAssetDir()),
      handler: 'index.handler',
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? CONSTRUCT_DEFAULTS.memorySize,
      timeout: props.timeout ?? CONSTRUCT_DEFAULTS.timeout,
      role,
      logGroup: this.logGroup,
      reservedConcurrentExecutions: props.reservedConcurrency,
      environment: {
        ...environment,
        ...(completionBus ? { SOCI_EVENT_BUS: completionBus.eventBusArn } : {}),
        ...(this.ztocCache ? { SOCI_ZTOC_CACHE: this.ztocCache.repositoryName } : {}),
        NODE_OPTIONS: '--enable-source-maps',
      },
      retryAttempts: RETRY_ATTEMPTS,
      maxEventAge,
      onFailure: new SqsDestination(this.deadLetterQueue),
    });

    this.grantRepositoryAccess(stack, role);
    if (completionBus) completionBus.grantPutEventsTo(role);
    for (const key of props.kmsKeys ?? []) key.grantDecrypt(role);

    const eventPattern: events.EventPattern = {
      source: ['aws.ecr'],
      // Pushes to this account's registry only: the role and the allow-list cover nothing else, and a push
      // event forwarded from another account's bus would fail on access (the handler refuses it as well).
      account: [stack.account],
      detailType: ['ECR Image Action'],
      detail: pushDetailPattern(this.repositoryFilters, tagSuffix),
    };
    const rule = new events.Rule(this, 'PushRule', {
      description: 'ECR pushes to the allow-listed repositories -> SOCI indexer',
      eventPattern,
    });
    this.rule = rule;
    rule.addTarget(
      new targets.LambdaFunction(this.function, {
        deadLetterQueue: this.deadLetterQueue,
        retryAttempts: RETRY_ATTEMPTS,
        maxEventAge,
      }),
    );
    this.node.addValidation({ validate: () => this.checkPatternSize(eventPattern) });

    this.syncFunction = this.createSync(stack, props, environment, completionBus);
    if (props.syncSchedule !== 'off') {
      const syncRule = new events.Rule(this, 'SyncSchedule', {
        description: 'Reconcile the allow-listed repositories: index what has no up-to-date SOCI index',
        schedule: props.syncSchedule ?? CONSTRUCT_DEFAULTS.syncSchedule,
      });
      this.syncRule = syncRule;
      syncRule.addTarget(new targets.LambdaFunction(this.syncFunction, { deadLetterQueue: this.deadLetterQueue, retryAttempts: 0 }));
    }

    this.alarms = this.createAlarms(props.alarmTopic);
  }

  /**
   * The sync function: the same code asset, another entry (`sync-handler.mjs`). It reads manifests and lists
   * repositories, invokes the indexer, and deletes tags only with syncPrune; it writes nothing else.
   */
  private createSync(
    stack: Stack,
    props: SociIndexerProps,
    environment: Record<string, string>,
    completionBus: events.IEventBus | undefined,
  ): lambda.Function {
    const maxInvocations = props.syncMaxInvocations ?? CONSTRUCT_DEFAULTS.syncMaxInvocations;
    if (!Number.isInteger(maxInvocations) || maxInvocations < 1 || maxInvocations > 1_000_000) {
      throw new SociIndexerConfigError(`syncMaxInvocations: expected a whole number from 1 to 1000000, got ${maxInvocations}`);
    }
    const logGroup = new logs.LogGroup(this, 'SyncLogGroup', {
      retention: props.logRetention ?? CONSTRUCT_DEFAULTS.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, 'SyncRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    logGroup.grantWrite(role);
    const repositories = repositoryArns(stack, this.repositoryFilters);
    const everyRepository = stack.formatArn({ service: 'ecr', resource: 'repository', resourceName: '*' });
    const policy = new iam.Policy(this, 'SyncPolicy', {
      statements: [
        new iam.PolicyStatement({ actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }),
        // Listing repository names cannot be narrowed to a pattern: DescribeRepositories without names is
        // authorized on the repositories it returns; the planner then reads only the allow-listed ones.
        new iam.PolicyStatement({ actions: ['ecr:DescribeRepositories'], resources: [everyRepository] }),
        new iam.PolicyStatement({
          actions: ['ecr:DescribeImages', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
          resources: repositories,
        }),
        ...(props.syncPrune === true ? [new iam.PolicyStatement({ actions: ['ecr:BatchDeleteImage'], resources: repositories })] : []),
      ],
    });
    policy.attachToRole(role);
    const wildcards = unique([everyRepository, ...repositories.filter((arn) => arn.includes('*'))]);
    Validations.of(policy).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'ecr:GetAuthorizationToken has no resource-level permissions; AWS requires Resource "*" for it, and it is the only action on "*".',
      },
      ...wildcards.map((arn) => ({
        id: `AwsSolutions-IAM5[Resource::${nagResource(stack, arn)}]`,
        reason:
          arn === everyRepository
            ? 'ecr:DescribeRepositories (names only) lists the registry; every other action is scoped to the allow-listed repositories.'
            : `The allow-list entry is a repository pattern; the read actions are scoped to exactly the repositories it names (${arn.slice(arn.lastIndexOf('/') + 1)}).`,
      })),
    );
    for (const key of props.kmsKeys ?? []) key.grantDecrypt(role);
    if (completionBus) completionBus.grantPutEventsTo(role);
    const fn = new lambda.Function(this, 'SyncFunction', {
      code: lambda.Code.fromAsset(lambdaAssetDir()),
      handler: 'sync-handler.handler',
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 1024,
      timeout: Duration.minutes(15),
      role,
      logGroup,
      // One sync at a time: a second run while one is fanning out would only invoke the same images twice.
      reservedConcurrentExecutions: 1,
      retryAttempts: 0,
      environment: {
        ...environment,
        ...(completionBus ? { SOCI_EVENT_BUS: completionBus.eventBusArn } : {}),
        // The cache repository is never synced, even when the allow-list pattern covers it.
        ...(this.ztocCache ? { SOCI_ZTOC_CACHE: this.ztocCache.repositoryName } : {}),
        SOCI_SYNC_FUNCTION: this.function.functionArn,
        SOCI_SYNC_PRUNE: String(props.syncPrune ?? false),
        SOCI_SYNC_MAX_INVOCATIONS: String(maxInvocations),
        NODE_OPTIONS: '--enable-source-maps',
      },
    });
    // The unqualified function only (grantInvoke would add every version and alias, `<arn>:*`).
    role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [this.function.functionArn] }));
    return fn;
  }

  /** A handler metric in namespace `SociIndexer` for this instance's service (Sum over 5 minutes). */
  metric(metricName: SociIndexerMetricName, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      statistic: cloudwatch.Stats.SUM,
      period: Duration.minutes(5),
      ...props,
      namespace: DEFAULT_METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { ...props?.dimensionsMap, service: this.serviceName },
    });
  }

  /** Images that got a SOCI index. */
  metricImagesIndexed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.imagesIndexed, props);
  }

  /**
   * Skipped images carry a `reason` dimension (the handler's skip codes, e.g. `own-output`, `untagged`,
   * `not-an-image`, `filtered-out`); CloudWatch keeps one series per reason.
   */
  metricImagesSkipped(reason: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.imagesSkipped, { ...props, dimensionsMap: { reason, ...props?.dimensionsMap } });
  }

  /** Images the handler could not index (the ImagesFailedAlarm watches it). */
  metricImagesFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.imagesFailed, props);
  }

  /** Layers that got a zTOC. */
  metricLayersIndexed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.layersIndexed, props);
  }

  /** Per `reason` dimension: a layer skip code (`below-minimum-size`, `unsupported-format`, `cannot-be-indexed`, ...; README). */
  metricLayersSkipped(reason: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.layersSkipped, { ...props, dimensionsMap: { reason, ...props?.dimensionsMap } });
  }

  /** Layer bytes actually read to build zTOCs. */
  metricBytesRead(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.bytesRead, props);
  }

  /** Bytes of the zTOCs built. */
  metricZtocBytes(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.ztocBytes, props);
  }

  /** Registry and ECR API requests answered "slow down" (ECR's PutImage allows 10 per second). */
  metricThrottled(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.throttled, props);
  }

  /** Layers whose zTOC came from the zTOC cache (not read). */
  metricLayersReused(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.layersReused, props);
  }

  /** Compressed layer bytes not read thanks to the zTOC cache. */
  metricBytesSaved(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.bytesSaved, props);
  }

  /** Build duration per image (Average by default). */
  metricDurationMs(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric(METRIC.durationMs, { statistic: cloudwatch.Stats.AVERAGE, ...props });
  }

  /** The cache repository the props ask for; a created one is emptied and deleted with the stack (it holds only derived data). */
  private createZtocCache(props: SociIndexerProps): ecr.IRepository | undefined {
    if (props.ztocCache === false) return undefined;
    if (props.ztocCache !== undefined) return props.ztocCache;
    const expiry = props.ztocCacheExpiry ?? CONSTRUCT_DEFAULTS.ztocCacheExpiry;
    const days = expiry.toDays({ integral: false });
    if (!Number.isInteger(days) || days < 1) {
      throw new SociIndexerConfigError(`ztocCacheExpiry: expected a whole number of days ≥ 1, got ${expiry.toHumanString()}`);
    }
    return new ecr.Repository(this, 'ZtocCache', {
      encryption: ecr.RepositoryEncryption.AES_256,
      // Entries are re-tagged when a bad one is replaced by a rebuild.
      imageTagMutability: ecr.TagMutability.MUTABLE,
      lifecycleRules: [
        { description: 'zTOC cache entries expire; a miss only costs a rebuild', tagStatus: ecr.TagStatus.ANY, maxImageAge: expiry },
      ],
      removalPolicy: RemovalPolicy.DESTROY,
      emptyOnDelete: true,
    });
  }

  private grantRepositoryAccess(stack: Stack, role: iam.Role): void {
    const authorization = new iam.Policy(this, 'EcrPolicy', {
      statements: [
        // ECR accepts no narrower resource for this action.
        new iam.PolicyStatement({ actions: ['ecr:GetAuthorizationToken'], resources: ['*'] }),
        new iam.PolicyStatement({
          actions: [
            'ecr:BatchGetImage',
            'ecr:GetDownloadUrlForLayer',
            'ecr:BatchCheckLayerAvailability',
            'ecr:InitiateLayerUpload',
            'ecr:UploadLayerPart',
            'ecr:CompleteLayerUpload',
            'ecr:PutImage',
          ],
          resources: repositoryArns(stack, this.repositoryFilters),
        }),
      ],
    });
    authorization.attachToRole(role);
    if (this.ztocCache) {
      // The cache: read entries (and be the source of blob mounts), write new ones; nothing else there.
      // A policy of its own, so IAM's statement merging never widens it onto the image repositories.
      new iam.Policy(this, 'ZtocCachePolicy', {
        statements: [
          new iam.PolicyStatement({
            actions: [
              'ecr:BatchGetImage',
              'ecr:GetDownloadUrlForLayer',
              'ecr:BatchCheckLayerAvailability',
              'ecr:InitiateLayerUpload',
              'ecr:UploadLayerPart',
              'ecr:CompleteLayerUpload',
              'ecr:PutImage',
            ],
            resources: [this.ztocCache.repositoryArn],
          }),
        ],
      }).attachToRole(role);
    }
    const wildcardArns = repositoryArns(stack, this.repositoryFilters).filter((arn) => arn.includes('*'));
    Validations.of(authorization).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'ecr:GetAuthorizationToken has no resource-level permissions; AWS requires Resource "*" for it, and it is the only action on "*".',
      },
      ...wildcardArns.map((arn) => ({
        id: `AwsSolutions-IAM5[Resource::${nagResource(stack, arn)}]`,
        reason: `The allow-list entry is a repository pattern; the pull/push actions are scoped to exactly the repositories it names (${arn.slice(arn.lastIndexOf('/') + 1)}).`,
      })),
    );
  }

  private checkTagPatterns(tagSuffix: string): void {
    for (const { repository, tag } of this.repositoryFilters) {
      if (tag === undefined) continue;
      const relation = tagPatternVersusSuffix(tag, tagSuffix);
      if (relation === 'only-output') {
        throw new SociIndexerConfigError(
          `repositories: ${repository}:${tag} only matches tags ending with the output suffix ${tagSuffix}, which are never indexed`,
        );
      }
      if (relation === 'overlapping') {
        Annotations.of(this).addInfo(
          `${repository}:${tag} also matches output tags (*${tagSuffix}); those pushes reach the function, which skips them`,
        );
      }
    }
  }

  private checkPatternSize(eventPattern: events.EventPattern): string[] {
    const { detailType, ...rest } = eventPattern;
    const size = JSON.stringify(Stack.of(this).resolve({ ...rest, 'detail-type': detailType })).length;
    if (size > EVENT_PATTERN_MAX) {
      return [
        `the event pattern for repositories is ${size} characters; EventBridge accepts at most ${EVENT_PATTERN_MAX}: use fewer or broader patterns`,
      ];
    }
    if (size > EVENT_PATTERN_DEFAULT_QUOTA) {
      Annotations.of(this).addWarning(
        `the event pattern is ${size} characters; above ${EVENT_PATTERN_DEFAULT_QUOTA} the account needs a raised "Event pattern size" quota`,
      );
    }
    return [];
  }

  private createAlarms(topic: sns.ITopic | undefined): cloudwatch.Alarm[] {
    const atLeastOne = (id: string, metric: cloudwatch.IMetric, description: string) =>
      new cloudwatch.Alarm(this, id, {
        metric,
        alarmDescription: description,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    const alarms = [
      atLeastOne(
        'ErrorsAlarm',
        this.function.metricErrors({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
        'The SOCI indexer function failed (retried up to twice, then sent to the dead-letter queue).',
      ),
      atLeastOne(
        'ThrottlesAlarm',
        this.function.metricThrottles({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
        'The SOCI indexer function was throttled (reserved concurrency or account limit).',
      ),
      atLeastOne(
        'DeadLetterAlarm',
        this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: cloudwatch.Stats.MAXIMUM }),
        'Push events that were never indexed wait in the SOCI indexer dead-letter queue.',
      ),
      atLeastOne('ImagesFailedAlarm', this.metricImagesFailed(), 'The SOCI indexer reported images it could not index.'),
    ];
    if (topic) {
      const action = new cloudwatchActions.SnsAction(topic);
      for (const alarm of alarms) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
    return alarms;
  }
}

/** The handler's environment contract for these props (the event bus is added separately: a token). */
function handlerEnvironment(props: SociIndexerProps, serviceName: string): Record<string, string> {
  const platforms = props.platforms ?? DEFAULTS.platforms;
  return {
    SOCI_REPOSITORY_FILTERS: props.repositories.map((r) => r.trim()).join(','),
    SOCI_MIN_LAYER_SIZE: String(props.minLayerSize ?? DEFAULTS.minLayerSize),
    SOCI_SPAN_SIZE: String(props.spanSize ?? DEFAULTS.spanSize),
    SOCI_INDEX_VERSION: props.indexVersion ?? DEFAULTS.indexVersion,
    SOCI_TAG_SUFFIX: props.tagSuffix ?? DEFAULTS.tagSuffix,
    SOCI_IN_PLACE: String(props.inPlace ?? DEFAULTS.inPlace),
    SOCI_PLATFORMS: platforms === 'all' ? 'all' : platforms.join(','),
    ...(props.buildToolId !== undefined ? { SOCI_BUILD_TOOL_ID: props.buildToolId } : {}),
    POWERTOOLS_SERVICE_NAME: serviceName,
    POWERTOOLS_METRICS_NAMESPACE: DEFAULT_METRICS_NAMESPACE,
    POWERTOOLS_LOG_LEVEL: props.logLevel ?? CONSTRUCT_DEFAULTS.logLevel,
  };
}

/** Runs the handler's cold-start parser on the environment; unresolved tokens are checked at deploy. */
function validateWithHandlerParser(environment: Record<string, string>): void {
  const resolved = Object.fromEntries(Object.entries(environment).filter(([, value]) => !Token.isUnresolved(value)));
  if (resolved.SOCI_REPOSITORY_FILTERS === undefined) {
    throw new SociIndexerConfigError('repositories: must be a list of strings known at synth time');
  }
  if (resolved.SOCI_REPOSITORY_FILTERS === '') {
    throw new SociIndexerConfigError('repositories: give at least one repository pattern');
  }
  try {
    parseConfig(resolved);
  } catch (err) {
    if (err instanceof ConfigError) {
      const reason = err.message.slice(err.variable.length + 2); // the message repeats `<variable>: `
      throw new SociIndexerConfigError(`${propOf[err.variable] ?? err.variable}: ${reason}`);
    }
    throw err;
  }
}

const propOf: Record<string, string> = {
  SOCI_REPOSITORY_FILTERS: 'repositories',
  SOCI_MIN_LAYER_SIZE: 'minLayerSize',
  SOCI_SPAN_SIZE: 'spanSize',
  SOCI_INDEX_VERSION: 'indexVersion',
  SOCI_TAG_SUFFIX: 'tagSuffix',
  SOCI_IN_PLACE: 'inPlace',
  SOCI_PLATFORMS: 'platforms',
  SOCI_BUILD_TOOL_ID: 'buildToolId',
};

/** How cdk-nag prints a resource ARN in a finding id: pseudo parameters as `<AWS::Name>`. */
function nagResource(stack: Stack, arn: string): string {
  const resolved = stack.resolve(arn) as unknown;
  if (typeof resolved === 'string') return resolved;
  const parts = (resolved as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1];
  return parts.map((part) => (typeof part === 'string' ? part : `<${(part as { Ref: string }).Ref}>`)).join('');
}
