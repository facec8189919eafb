// A deployable stack around SociIndexer, configured from plain values so `cdk deploy -c key=value`
// can express every setting. The stack is environment-agnostic: it synthesizes without credentials.
import { Annotations, CfnOutput, Duration, Stack, type StackProps } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as events from 'aws-cdk-lib/aws-events';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { ECR_REPOSITORY_NAME_MAX, isRepositoryName } from '../lambda/oci/reference.ts';
import { SociIndexer, SociIndexerConfigError, type SociIndexerProps } from './soci-indexer.ts';

/** Used when no allow-list is given, so a forgotten `-c repositories=...` indexes nothing real. */
export const PLACEHOLDER_REPOSITORY = 'soci-indexer-placeholder';

/** Props that are plain values already keep their meaning and defaults (see SociIndexerProps). */
type PlainProps =
  | 'minLayerSize'
  | 'spanSize'
  | 'indexVersion'
  | 'tagSuffix'
  | 'inPlace'
  | 'platforms'
  | 'memorySize'
  | 'completionEvents'
  | 'reservedConcurrency'
  | 'buildToolId'
  | 'logLevel';

/**
 * Every deployment setting as a plain value (the context keys have the same names). The settings that are
 * props of SociIndexer keep their meaning and defaults there.
 */
export interface SociIndexerSettings extends Partial<Pick<SociIndexerProps, PlainProps>> {
  /**
   * The allow-list: `repository[:tag]` patterns (see SociIndexerProps.repositories).
   *
   * @default - PLACEHOLDER_REPOSITORY alone, with a warning at synth
   */
  readonly repositories?: string[];

  /**
   * The indexer function's timeout, in minutes.
   *
   * @default 15
   */
  readonly timeoutMinutes?: number;

  /**
   * The name or ARN of the bus for completion events.
   *
   * @default - the account's default bus
   */
  readonly eventBus?: string;

  /**
   * The ARN of an existing SNS topic for alarm notifications.
   *
   * @default - alarms without actions
   */
  readonly alarmTopicArn?: string;

  /**
   * How many days the log groups keep their logs: one of CloudWatch Logs' retention values (1, 3, 5, 7,
   * 14, 30, ...).
   *
   * @default 30
   */
  readonly logRetentionDays?: number;

  /**
   * The ARNs of the customer managed keys of encrypted repositories.
   *
   * @default - none
   */
  readonly kmsKeyArns?: string[];

  /**
   * The zTOC cache: `false` for none, or the name of an existing repository to use.
   *
   * @default - a new cache repository
   */
  readonly ztocCache?: false | string;

  /**
   * Days a zTOC cache entry lives after it was pushed (in a cache repository the construct creates).
   *
   * @default 30
   */
  readonly ztocCacheExpiryDays?: number;

  /**
   * When the sync runs: `off`, or an EventBridge schedule expression (`rate(1 day)`, `cron(0 3 * * ? *)`).
   *
   * @default 'rate(1 day)'
   */
  readonly syncSchedule?: string;

  /**
   * Whether the sync deletes stale `<tag><suffix>` tags (see SociIndexerProps.syncPrune).
   *
   * @default false
   */
  readonly syncPrune?: boolean;
}

/** Props of SociIndexerStack. */
export interface SociIndexerStackProps extends StackProps {
  /**
   * The deployment settings, typically read from CDK context with settingsFromContext.
   */
  readonly settings: SociIndexerSettings;
}

/** A deployable stack holding one SociIndexer, configured from plain values. */
export class SociIndexerStack extends Stack {
  /** The indexer the stack deploys. */
  readonly indexer: SociIndexer;

  constructor(scope: Construct, id: string, props: SociIndexerStackProps) {
    super(scope, id, { description: 'SOCI indexer: builds SOCI indexes for images pushed to Amazon ECR', ...props });
    const { settings } = props;
    let repositories = settings.repositories;
    if (repositories === undefined || repositories.length === 0) {
      Annotations.of(this).addWarning(
        `no repositories given: indexing only "${PLACEHOLDER_REPOSITORY}". Deploy with -c repositories=<repo[:tag] patterns>`,
      );
      repositories = [PLACEHOLDER_REPOSITORY];
    }
    this.indexer = new SociIndexer(this, 'SociIndexer', { ...this.importedResources(settings), ...plainProps(settings), repositories });

    new CfnOutput(this, 'FunctionName', { value: this.indexer.function.functionName, description: 'The indexer Lambda function' });
    new CfnOutput(this, 'RuleName', { value: this.indexer.rule.ruleName, description: 'The EventBridge rule for ECR pushes' });
    new CfnOutput(this, 'DeadLetterQueueUrl', {
      value: this.indexer.deadLetterQueue.queueUrl,
      description: 'Events that failed every retry',
    });
    new CfnOutput(this, 'LogGroupName', { value: this.indexer.logGroup.logGroupName, description: 'The function log group' });
    new CfnOutput(this, 'SyncFunctionName', {
      value: this.indexer.syncFunction.functionName,
      description: 'Run now: aws lambda invoke --function-name <this> --invocation-type Event /dev/null',
    });
  }

  private importedResources(settings: SociIndexerSettings): Pick<SociIndexerProps, 'eventBus' | 'alarmTopic' | 'kmsKeys' | 'ztocCache'> {
    const bus = settings.eventBus;
    return {
      eventBus:
        bus === undefined
          ? undefined
          : bus.startsWith('arn:')
            ? events.EventBus.fromEventBusArn(this, 'CompletionBus', bus)
            : events.EventBus.fromEventBusName(this, 'CompletionBus', bus),
      alarmTopic: settings.alarmTopicArn === undefined ? undefined : sns.Topic.fromTopicArn(this, 'AlarmTopic', settings.alarmTopicArn),
      kmsKeys: settings.kmsKeyArns?.map((arn, i) => kms.Key.fromKeyArn(this, `RepositoryKey${i}`, arn)),
      ztocCache:
        typeof settings.ztocCache === 'string'
          ? ecr.Repository.fromRepositoryName(this, 'ZtocCache', settings.ztocCache)
          : settings.ztocCache,
    };
  }
}

function plainProps(settings: SociIndexerSettings): Omit<SociIndexerProps, 'repositories'> {
  const {
    repositories: _,
    timeoutMinutes,
    eventBus: _bus,
    alarmTopicArn: _topic,
    logRetentionDays,
    kmsKeyArns: _keys,
    ztocCache: _cache,
    ztocCacheExpiryDays,
    syncSchedule,
    ...plain
  } = settings;
  if (logRetentionDays !== undefined && !Object.values(logs.RetentionDays).includes(logRetentionDays)) {
    throw new SociIndexerConfigError(
      `logRetentionDays: ${logRetentionDays} is not a CloudWatch Logs retention period (1, 3, 5, 7, 14, 30, 60, 90, ...)`,
    );
  }
  return {
    ...plain,
    timeout: timeoutMinutes === undefined ? undefined : Duration.minutes(timeoutMinutes),
    logRetention: logRetentionDays as logs.RetentionDays | undefined,
    ztocCacheExpiry: ztocCacheExpiryDays === undefined ? undefined : Duration.days(ztocCacheExpiryDays),
    syncSchedule: syncScheduleOf(syncSchedule),
  };
}

const SCHEDULE_EXPRESSION = /^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\))$/;

function syncScheduleOf(value: string | undefined): events.Schedule | 'off' | undefined {
  if (value === undefined) return undefined;
  if (value === 'off') return 'off';
  if (!SCHEDULE_EXPRESSION.test(value)) {
    throw new SociIndexerConfigError(`syncSchedule: expected off, rate(<n> <unit>) or cron(...), got ${JSON.stringify(value)}`);
  }
  return events.Schedule.expression(value);
}

/**
 * Reads the settings from CDK context. `-c key=value` gives strings (lists comma-separated); cdk.json may
 * give native JSON values. Unknown values fail with a SociIndexerConfigError naming the key.
 */
export function settingsFromContext(get: (key: string) => unknown): SociIndexerSettings {
  const text = (key: string): string | undefined => {
    const value = get(key);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new SociIndexerConfigError(`context ${key}: expected a single value, got ${JSON.stringify(value)}`);
    }
    return String(value).trim();
  };
  const list = (key: string): string[] | undefined => {
    const value = get(key);
    if (value === undefined || value === null) return undefined;
    const items = Array.isArray(value) ? value.map(String) : String(value).split(',');
    return items.map((item) => item.trim()).filter((item) => item !== '');
  };
  const integer = (key: string): number | undefined => {
    const value = text(key);
    if (value === undefined) return undefined;
    if (!/^\d+$/.test(value)) throw new SociIndexerConfigError(`context ${key}: expected a whole number, got ${JSON.stringify(value)}`);
    return Number(value);
  };
  const boolean = (key: string): boolean | undefined => {
    const value = text(key);
    if (value === undefined) return undefined;
    if (value !== 'true' && value !== 'false')
      throw new SociIndexerConfigError(`context ${key}: expected true or false, got ${JSON.stringify(value)}`);
    return value === 'true';
  };
  const oneOf = <T extends string>(key: string, allowed: readonly T[]): T | undefined => {
    const value = text(key);
    if (value === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(value)) {
      throw new SociIndexerConfigError(`context ${key}: expected one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
    }
    return value as T;
  };
  const platforms = list('platforms');
  return {
    repositories: list('repositories'),
    minLayerSize: integer('minLayerSize'),
    spanSize: integer('spanSize'),
    indexVersion: oneOf('indexVersion', ['v1', 'v2'] as const),
    tagSuffix: text('tagSuffix'),
    inPlace: boolean('inPlace'),
    platforms: platforms === undefined || (platforms.length === 1 && platforms[0] === 'all') ? undefined : platforms,
    memorySize: integer('memorySize'),
    timeoutMinutes: integer('timeoutMinutes'),
    eventBus: text('eventBus'),
    completionEvents: boolean('completionEvents'),
    alarmTopicArn: text('alarmTopicArn'),
    logRetentionDays: integer('logRetentionDays'),
    reservedConcurrency: integer('reservedConcurrency'),
    buildToolId: text('buildToolId'),
    kmsKeyArns: list('kmsKeyArns'),
    logLevel: oneOf('logLevel', ['DEBUG', 'INFO', 'WARN', 'ERROR'] as const),
    ztocCache: ztocCacheSetting(text('ztocCache')),
    ztocCacheExpiryDays: integer('ztocCacheExpiryDays'),
    syncSchedule: text('syncSchedule'),
    syncPrune: boolean('syncPrune'),
  };
}

/** `ztocCache` context: unset or `true` = create one, `false` = none, else an existing repository's name. */
function ztocCacheSetting(value: string | undefined): false | string | undefined {
  if (value === undefined || value === 'true') return undefined;
  if (value === 'false') return false;
  if (!isRepositoryName(value, ECR_REPOSITORY_NAME_MAX)) {
    throw new SociIndexerConfigError(`context ztocCache: expected true, false or a repository name, got ${JSON.stringify(value)}`);
  }
  return value;
}
