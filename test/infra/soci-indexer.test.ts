// Assertions on the template SociIndexer synthesizes: what the rule lets through, what the function may
// touch, where failures end up, and that the environment is exactly what the handler's parser accepts.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as events from 'aws-cdk-lib/aws-events';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import {
  parseRepositoryFilters,
  SociIndexer,
  SociIndexerConfigError,
  type SociIndexerProps,
  tagPatternVersusSuffix,
} from '../../infra/soci-indexer.ts';
import { parseConfig } from '../../lambda/handler/config.ts';
import { DEFAULTS } from '../../lambda/soci/defaults.ts';

const cdkJson = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8')) as { context: Record<string, unknown> };

/** A stack with the app's feature flags; bundling skipped (one test in stack.test.ts bundles for real). */
function indexerStack(props: SociIndexerProps): { stack: Stack; indexer: SociIndexer; template: Template } {
  const app = new App({ context: { ...cdkJson.context, 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'Test');
  const indexer = new SociIndexer(stack, 'Indexer', props);
  return { stack, indexer, template: Template.fromStack(stack) };
}

/** The indexer's one resource of a kind; the sync's (logical ids with `Sync`) are checked in "scheduled sync". */
function only<T>(record: Record<string, T>): T {
  const values = Object.entries(record)
    .filter(([id]) => !id.includes('Sync'))
    .map(([, value]) => value);
  assert.equal(values.length, 1, `expected exactly one resource, got ${values.length}`);
  return values[0]!;
}

interface Statement {
  Action: string | string[];
  Resource: unknown;
  Effect: string;
}

/** Statements of the indexer's policies, or of the sync's. */
function policyStatements(template: Template, of: 'indexer' | 'sync' = 'indexer'): Statement[] {
  return Object.entries(template.findResources('AWS::IAM::Policy'))
    .filter(([id]) => id.includes('Sync') === (of === 'sync'))
    .map(([, policy]) => policy)
    .flatMap((policy) => (policy as { Properties: { PolicyDocument: { Statement: Statement[] } } }).Properties.PolicyDocument.Statement);
}

const actionsOf = (s: Statement) => (Array.isArray(s.Action) ? s.Action : [s.Action]);
const repoArn = (name: string) => ({
  'Fn::Join': [
    '',
    ['arn:', { Ref: 'AWS::Partition' }, ':ecr:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:repository/${name}`],
  ],
});
const NOT_OUR_TAG = { 'anything-but': { suffix: '-soci' } };
const NOT_SOCI_ARTIFACT = [
  { 'anything-but': ['application/vnd.amazon.soci.index.v1+json', 'application/vnd.amazon.soci.index.v2+json'] },
  { exists: false },
];

/** The rule's `detail` pattern; other parts are checked in the first test. */
function ruleDetail(props: SociIndexerProps): unknown {
  const rule = only(indexerStack(props).template.findResources('AWS::Events::Rule')) as {
    Properties: { EventPattern: { detail: unknown } };
  };
  return rule.Properties.EventPattern.detail;
}
const EVERY_PUSH = { 'action-type': ['PUSH'], result: ['SUCCESS'], 'artifact-media-type': NOT_SOCI_ARTIFACT };

describe('event rule pattern', () => {
  test('mixes exact, prefix and wildcard repositories with per-repository tag patterns in one $or', () => {
    const { template } = indexerStack({
      repositories: ['app-*', 'ml/trainer', '*-svc', 'team/**/x', 'web:release-*', 'web:latest', 'api:*'],
    });
    const rule = only(template.findResources('AWS::Events::Rule')) as { Properties: { EventPattern: unknown; EventBusName?: unknown } };
    assert.equal(rule.Properties.EventBusName, undefined, 'ECR events arrive on the default bus');
    assert.deepEqual(rule.Properties.EventPattern, {
      source: ['aws.ecr'],
      // Only this account's pushes: cross-account events are not supported (README, Deploy).
      account: [{ Ref: 'AWS::AccountId' }],
      'detail-type': ['ECR Image Action'],
      detail: {
        ...EVERY_PUSH,
        $or: [
          {
            // entries without a tag pattern: any tag except our output, and untagged pushes
            'repository-name': [{ prefix: 'app-' }, 'ml/trainer', { wildcard: '*-svc' }, { wildcard: 'team/*/x' }],
            'image-tag': [NOT_OUR_TAG, { exists: false }],
          },
          { 'repository-name': ['web'], 'image-tag': [{ prefix: 'release-' }, 'latest'] },
          { 'repository-name': ['api'], 'image-tag': [NOT_OUR_TAG] },
        ],
      },
    });
  });

  test('a single branch is inlined, and the output exclusion follows a custom suffix', () => {
    assert.deepEqual(ruleDetail({ repositories: ['ml/trainer'], tagSuffix: '.lazy' }), {
      ...EVERY_PUSH,
      'repository-name': ['ml/trainer'],
      'image-tag': [{ 'anything-but': { suffix: '.lazy' } }, { exists: false }],
    });
  });

  test('"*" accepts every repository and makes tag-restricted entries redundant', () => {
    assert.deepEqual(ruleDetail({ repositories: ['*', 'web:v*'] }), { ...EVERY_PUSH, 'image-tag': [NOT_OUR_TAG, { exists: false }] });
  });

  test('a tag pattern that can also match output tags is kept and noted; one that only can is refused', () => {
    assert.equal(tagPatternVersusSuffix('v*', '-soci'), 'overlapping');
    assert.equal(tagPatternVersusSuffix('*ci', '-soci'), 'overlapping');
    assert.equal(tagPatternVersusSuffix('release-*-prod', '-soci'), 'disjoint');
    assert.equal(tagPatternVersusSuffix('latest', '-soci'), 'disjoint');
    assert.equal(tagPatternVersusSuffix('*-soci', '-soci'), 'only-output');
    assert.equal(tagPatternVersusSuffix('v1-soci', '-soci'), 'only-output');

    const { stack } = indexerStack({ repositories: ['web:v*'] });
    Annotations.fromStack(stack).hasInfo('/Test/Indexer', Match.stringLikeRegexp('web:v\\* also matches output tags'));
    assert.throws(() => indexerStack({ repositories: ['web:*-soci'] }), SociIndexerConfigError);
  });

  test('parses entries as the handler does, collapsing runs of "*"', () => {
    assert.deepEqual(parseRepositoryFilters(['a/**/b', ' web:v** ']), [{ repository: 'a/*/b' }, { repository: 'web', tag: 'v*' }]);
  });

  test("a pattern above the default quota warns, one above EventBridge's maximum fails synthesis", () => {
    const names = (n: number) => Array.from({ length: n }, (_, i) => `some-long-repository-name-${i}/service-*`);
    const { stack } = indexerStack({ repositories: names(60) });
    Annotations.fromStack(stack).hasWarning('/Test/Indexer', Match.stringLikeRegexp('raised "Event pattern size" quota'));
    assert.deepEqual(Annotations.fromStack(indexerStack({ repositories: names(5) }).stack).findWarning('*', Match.anyValue()), []);

    assert.throws(() => indexerStack({ repositories: names(200) }), /EventBridge accepts at most 4096/);
  });
});

describe('IAM', () => {
  test('pull/push actions only on the allow-listed repository ARNs, "*" only for GetAuthorizationToken', () => {
    const { template } = indexerStack({ repositories: ['app-*', 'ml/trainer', 'web:release-*', 'web:latest'] });
    const statements = policyStatements(template);

    const onStar = statements.filter((s) => s.Resource === '*' || (Array.isArray(s.Resource) && s.Resource.includes('*')));
    assert.deepEqual(onStar.map(actionsOf), [['ecr:GetAuthorizationToken']]);

    const ecr = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('ecr:') && a !== 'ecr:GetAuthorizationToken'));
    assert.equal(ecr.length, 2, 'the allow-listed repositories, and (its own policy) the zTOC cache');
    assert.deepEqual([...actionsOf(ecr[0]!)].sort(), [
      'ecr:BatchCheckLayerAvailability',
      'ecr:BatchGetImage',
      'ecr:CompleteLayerUpload',
      'ecr:GetDownloadUrlForLayer',
      'ecr:InitiateLayerUpload',
      'ecr:PutImage',
      'ecr:UploadLayerPart',
    ]);
    assert.deepEqual(ecr[0]!.Resource, [repoArn('app-*'), repoArn('ml/trainer'), repoArn('web')]);
    assert.ok(statements.every((s) => s.Effect === 'Allow'));
    assert.ok(!statements.some((s) => actionsOf(s).some((a) => a.startsWith('kms:'))), 'no KMS access without keys');
  });

  test('zTOC cache: pull and push on the cache repository only, and the function is told its name', () => {
    const { template } = indexerStack({ repositories: ['app'] });
    const repositories = Object.keys(template.findResources('AWS::ECR::Repository'));
    assert.equal(repositories.length, 1);
    const cacheId = repositories[0]!;
    const onCache = policyStatements(template).filter((s) => JSON.stringify(s.Resource).includes(cacheId));
    assert.deepEqual(
      onCache.map((s) => s.Resource),
      [{ 'Fn::GetAtt': [cacheId, 'Arn'] }],
    );
    assert.deepEqual([...actionsOf(onCache[0]!)].sort(), [
      'ecr:BatchCheckLayerAvailability',
      'ecr:BatchGetImage',
      'ecr:CompleteLayerUpload',
      'ecr:GetDownloadUrlForLayer',
      'ecr:InitiateLayerUpload',
      'ecr:PutImage',
      'ecr:UploadLayerPart',
    ]);
    const fn = only(template.findResources('AWS::Lambda::Function')) as {
      Properties: { Environment: { Variables: Record<string, unknown> } };
    };
    assert.deepEqual(fn.Properties.Environment.Variables.SOCI_ZTOC_CACHE, { Ref: cacheId });
  });

  test('zTOC cache: encrypted, entries expire after 30 days (or as asked), emptied and deleted with the stack', () => {
    const lifecycle = (template: Template) => {
      const repo = only(template.findResources('AWS::ECR::Repository')) as { Properties: Record<string, any>; DeletionPolicy: string };
      return { repo, rules: JSON.parse(repo.Properties.LifecyclePolicy.LifecyclePolicyText).rules };
    };
    const { repo, rules } = lifecycle(indexerStack({ repositories: ['app'] }).template);
    // AES-256 is ECR's default (the template then leaves EncryptionConfiguration out); never KMS, whose
    // keys would have to match the image repositories' for zTOCs to be mounted.
    assert.ok(
      repo.Properties.EncryptionConfiguration === undefined || repo.Properties.EncryptionConfiguration.EncryptionType === 'AES256',
      JSON.stringify(repo.Properties),
    );
    assert.equal(repo.Properties.EmptyOnDelete, true);
    assert.equal(repo.DeletionPolicy, 'Delete');
    assert.equal(repo.Properties.RepositoryName, undefined, 'no fixed name: installations coexist');
    assert.deepEqual(
      rules.map((r: any) => [r.selection.tagStatus, r.selection.countType, r.selection.countUnit, r.selection.countNumber, r.action.type]),
      [['any', 'sinceImagePushed', 'days', 30, 'expire']],
    );
    const custom = lifecycle(indexerStack({ repositories: ['app'], ztocCacheExpiry: Duration.days(7) }).template);
    assert.equal(custom.rules[0].selection.countNumber, 7);
    assert.throws(
      () => indexerStack({ repositories: ['app'], ztocCacheExpiry: Duration.hours(12) }),
      (err: unknown) => err instanceof SociIndexerConfigError && /ztocCacheExpiry/.test(err.message),
    );
  });

  test('zTOC cache: false creates and grants nothing; an existing repository is used and granted as it is', () => {
    const off = indexerStack({ repositories: ['app'], ztocCache: false });
    assert.deepEqual(off.template.findResources('AWS::ECR::Repository'), {});
    const fnOff = only(off.template.findResources('AWS::Lambda::Function')) as {
      Properties: { Environment: { Variables: Record<string, unknown> } };
    };
    assert.equal(fnOff.Properties.Environment.Variables.SOCI_ZTOC_CACHE, undefined);
    assert.equal(policyStatements(off.template).filter((s) => actionsOf(s).includes('ecr:PutImage')).length, 1);
    assert.equal(off.indexer.ztocCache, undefined);

    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Test');
    const existing = ecr.Repository.fromRepositoryName(stack, 'Shared', 'platform/ztoc-cache');
    new SociIndexer(stack, 'Indexer', { repositories: ['app'], ztocCache: existing });
    const template = Template.fromStack(stack);
    assert.deepEqual(template.findResources('AWS::ECR::Repository'), {});
    const fn = only(template.findResources('AWS::Lambda::Function')) as {
      Properties: { Environment: { Variables: Record<string, unknown> } };
    };
    assert.equal(fn.Properties.Environment.Variables.SOCI_ZTOC_CACHE, 'platform/ztoc-cache');
    const pushes = policyStatements(template).filter((s) => actionsOf(s).includes('ecr:PutImage'));
    assert.deepEqual(pushes[1]!.Resource, repoArn('platform/ztoc-cache'));
  });

  test('"*" in the allow-list grants every repository of the account and region, nothing wider', () => {
    const { template } = indexerStack({ repositories: ['*', 'app'] });
    const ecr = policyStatements(template).find((s) => actionsOf(s).includes('ecr:PutImage'));
    assert.deepEqual(ecr?.Resource, repoArn('*'));
  });

  test('completion events: PutEvents on the chosen bus only; none when disabled', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Test');
    const bus = new events.EventBus(stack, 'Bus');
    new SociIndexer(stack, 'Indexer', { repositories: ['app'], eventBus: bus });
    const template = Template.fromStack(stack);
    const put = policyStatements(template).filter((s) => actionsOf(s).includes('events:PutEvents'));
    assert.deepEqual(
      put.map((s) => s.Resource),
      [{ 'Fn::GetAtt': [stack.getLogicalId(bus.node.defaultChild as events.CfnEventBus), 'Arn'] }],
    );

    const defaultBus = policyStatements(indexerStack({ repositories: ['app'] }).template).find((s) =>
      actionsOf(s).includes('events:PutEvents'),
    );
    assert.deepEqual(defaultBus?.Resource, {
      'Fn::Join': [
        '',
        ['arn:', { Ref: 'AWS::Partition' }, ':events:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':event-bus/default'],
      ],
    });

    const off = indexerStack({ repositories: ['app'], completionEvents: false }).template;
    assert.ok(!policyStatements(off).some((s) => actionsOf(s).includes('events:PutEvents')));
    const fn = only(off.findResources('AWS::Lambda::Function')) as { Properties: { Environment: { Variables: Record<string, unknown> } } };
    assert.equal(fn.Properties.Environment.Variables.SOCI_EVENT_BUS, undefined);
  });

  test('KMS decrypt only on the given repository keys', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Test');
    const keyArn = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    new SociIndexer(stack, 'Indexer', { repositories: ['app'], kmsKeys: [kms.Key.fromKeyArn(stack, 'Key', keyArn)] });
    const kmsStatements = policyStatements(Template.fromStack(stack)).filter((s) => actionsOf(s).some((a) => a.startsWith('kms:')));
    assert.deepEqual(
      kmsStatements.map((s) => [actionsOf(s), s.Resource]),
      [[['kms:Decrypt'], keyArn]],
    );
  });

  test("logs: only the function's own log group, no managed policies", () => {
    const { template } = indexerStack({ repositories: ['app'] });
    const role = only(template.findResources('AWS::IAM::Role')) as { Properties: Record<string, unknown> };
    assert.equal(role.Properties.ManagedPolicyArns, undefined);
    const logs = policyStatements(template).filter((s) => actionsOf(s).some((a) => a.startsWith('logs:')));
    const logGroupId = Object.keys(template.findResources('AWS::Logs::LogGroup')).find((id) => !id.includes('Sync'));
    assert.deepEqual(
      logs.map((s) => s.Resource),
      [{ 'Fn::GetAtt': [logGroupId, 'Arn'] }],
    );
  });
});

describe('function and failure handling', () => {
  test('Node.js 24 on ARM64, 2 vCPUs of memory, 15 minutes, own log group with retention', () => {
    const { template } = indexerStack({ repositories: ['app'] });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      MemorySize: 3538,
      Timeout: 900,
      Handler: 'index.handler',
      LoggingConfig: { LogGroup: { Ref: Match.stringLikeRegexp('LogGroup') } },
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
    const fn = only(template.findResources('AWS::Lambda::Function')) as { Properties: Record<string, unknown> };
    assert.equal(fn.Properties.ReservedConcurrentExecutions, undefined);
    assert.equal(fn.Properties.FunctionName, undefined, 'no hard-coded names');
  });

  test('sizing props reach the function', () => {
    const { template } = indexerStack({ repositories: ['app'], memorySize: 5307, timeout: Duration.minutes(10), reservedConcurrency: 3 });
    template.hasResourceProperties('AWS::Lambda::Function', { MemorySize: 5307, Timeout: 600, ReservedConcurrentExecutions: 3 });
  });

  test('EventBridge target and async invocation: 2 retries, bounded age, then the encrypted DLQ', () => {
    const { template } = indexerStack({ repositories: ['app'] });
    const queueId = Object.keys(template.findResources('AWS::SQS::Queue'))[0]!;
    const queueArn = { 'Fn::GetAtt': [queueId, 'Arn'] };
    template.hasResourceProperties('AWS::SQS::Queue', { SqsManagedSseEnabled: true, MessageRetentionPeriod: 1_209_600 });
    template.hasResourceProperties('AWS::Events::Rule', {
      Targets: [{ DeadLetterConfig: { Arn: queueArn }, RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 21_600 } }],
    });
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 21_600,
      DestinationConfig: { OnFailure: { Destination: queueArn } },
    });
    // The queue accepts EventBridge's dead letters from this rule only, and refuses unencrypted transport.
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({
            Effect: 'Allow',
            Action: 'sqs:SendMessage',
            Principal: { Service: 'events.amazonaws.com' },
            Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [Match.stringLikeRegexp('PushRule'), 'Arn'] } } },
          }),
        ]),
      },
    });
    const send = policyStatements(template).filter((s) => actionsOf(s).includes('sqs:SendMessage'));
    assert.deepEqual(
      send.map((s) => s.Resource),
      [queueArn],
    );
  });
});

describe('alarms and metrics', () => {
  test('errors, throttles, dead letters and failed images alarm at the first occurrence, to the topic when given', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Test');
    const topic = new sns.Topic(stack, 'Topic');
    const indexer = new SociIndexer(stack, 'Indexer', { repositories: ['app'], alarmTopic: topic, serviceName: 'idx' });
    const template = Template.fromStack(stack);
    const topicRef = { Ref: stack.getLogicalId(topic.node.defaultChild as sns.CfnTopic) };
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => (a as { Properties: Record<string, unknown> }).Properties,
    );
    assert.equal(indexer.alarms.length, 4);
    assert.deepEqual(alarms.map((a) => [a.Namespace, a.MetricName]).sort(), [
      ['AWS/Lambda', 'Errors'],
      ['AWS/Lambda', 'Throttles'],
      ['AWS/SQS', 'ApproximateNumberOfMessagesVisible'],
      ['SociIndexer', 'ImagesFailed'],
    ]);
    for (const alarm of alarms) {
      assert.equal(alarm.Threshold, 1);
      assert.equal(alarm.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
      assert.equal(alarm.TreatMissingData, 'notBreaching');
      assert.deepEqual(alarm.AlarmActions, [topicRef]);
      assert.deepEqual(alarm.OKActions, [topicRef]);
    }
    const failed = alarms.find((a) => a.MetricName === 'ImagesFailed');
    assert.deepEqual(failed?.Dimensions, [{ Name: 'service', Value: 'idx' }]);

    const noTopic = indexerStack({ repositories: ['app'] }).template;
    noTopic.allResourcesProperties('AWS::CloudWatch::Alarm', { AlarmActions: Match.absent() });
  });

  test('metric accessors use the handler namespace, the service dimension and the reason where the handler adds one', () => {
    const { indexer, stack } = indexerStack({ repositories: ['app'], serviceName: 'idx' });
    const rendered = (m: { namespace: string; metricName: string; dimensions?: unknown; statistic: string }) => [
      m.namespace,
      m.metricName,
      stack.resolve(m.dimensions),
      m.statistic,
    ];
    assert.deepEqual(rendered(indexer.metricImagesIndexed()), ['SociIndexer', 'ImagesIndexed', { service: 'idx' }, 'Sum']);
    assert.deepEqual(rendered(indexer.metricImagesFailed()), ['SociIndexer', 'ImagesFailed', { service: 'idx' }, 'Sum']);
    assert.deepEqual(rendered(indexer.metricImagesSkipped('own-output')), [
      'SociIndexer',
      'ImagesSkipped',
      { service: 'idx', reason: 'own-output' },
      'Sum',
    ]);
    assert.deepEqual(rendered(indexer.metricLayersSkipped('below-minimum-size')), [
      'SociIndexer',
      'LayersSkipped',
      { service: 'idx', reason: 'below-minimum-size' },
      'Sum',
    ]);
    assert.deepEqual(rendered(indexer.metricLayersIndexed()), ['SociIndexer', 'LayersIndexed', { service: 'idx' }, 'Sum']);
    assert.deepEqual(rendered(indexer.metricBytesRead()), ['SociIndexer', 'BytesRead', { service: 'idx' }, 'Sum']);
    assert.deepEqual(rendered(indexer.metricZtocBytes()), ['SociIndexer', 'ZtocBytes', { service: 'idx' }, 'Sum']);
    assert.deepEqual(rendered(indexer.metricDurationMs()), ['SociIndexer', 'DurationMs', { service: 'idx' }, 'Average']);
    assert.deepEqual(rendered(indexer.metricThrottled()), ['SociIndexer', 'Throttled', { service: 'idx' }, 'Sum']);
    assert.equal(indexer.metricImagesIndexed({ period: Duration.hours(1) }).period.toSeconds(), 3600);
  });
});

describe('environment (the handler contract)', () => {
  function variables(template: Template): Record<string, unknown> {
    const fn = only(template.findResources('AWS::Lambda::Function')) as {
      Properties: { Environment: { Variables: Record<string, unknown> } };
    };
    return fn.Properties.Environment.Variables;
  }
  const busArn = 'arn:aws:events:eu-west-1:111122223333:event-bus/default';

  test('defaults: every variable set explicitly, and the handler parses them to its own defaults', () => {
    const { template } = indexerStack({ repositories: ['app-*', ' ml/trainer:v*'], serviceName: 'idx' });
    const { SOCI_EVENT_BUS: bus, SOCI_ZTOC_CACHE: cache, ...env } = variables(template);
    assert.deepEqual(cache, { Ref: Object.keys(template.findResources('AWS::ECR::Repository'))[0] });
    assert.deepEqual(env, {
      SOCI_REPOSITORY_FILTERS: 'app-*,ml/trainer:v*',
      SOCI_MIN_LAYER_SIZE: '10485760',
      SOCI_SPAN_SIZE: '4194304',
      SOCI_INDEX_VERSION: 'v2',
      SOCI_TAG_SUFFIX: '-soci',
      SOCI_IN_PLACE: 'false',
      SOCI_PLATFORMS: 'all',
      POWERTOOLS_SERVICE_NAME: 'idx',
      POWERTOOLS_METRICS_NAMESPACE: 'SociIndexer',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      NODE_OPTIONS: '--enable-source-maps',
    });
    assert.deepEqual(bus, {
      'Fn::Join': [
        '',
        ['arn:', { Ref: 'AWS::Partition' }, ':events:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':event-bus/default'],
      ],
    });
    const parsed = parseConfig({ ...(env as Record<string, string>), SOCI_EVENT_BUS: busArn });
    const handlerDefaults = parseConfig({ SOCI_REPOSITORY_FILTERS: 'app-*,ml/trainer:v*' });
    assert.deepEqual(parsed, { ...handlerDefaults, eventBus: busArn });
  });

  test('every prop arrives as the value the handler parses', () => {
    const { template } = indexerStack({
      repositories: ['app'],
      minLayerSize: 0,
      spanSize: 1_048_576,
      indexVersion: 'v1',
      tagSuffix: '.lazy',
      inPlace: true,
      platforms: ['linux/amd64', 'linux/arm64/v8'],
      buildToolId: 'my-builder 1.0',
      logLevel: 'DEBUG',
    });
    const env = variables(template) as Record<string, string>;
    assert.equal(env.POWERTOOLS_LOG_LEVEL, 'DEBUG');
    const config = parseConfig({ ...env, SOCI_EVENT_BUS: busArn, SOCI_ZTOC_CACHE: 'resolved-at-deploy' });
    assert.deepEqual(
      [config.minLayerSize, config.spanSize, config.indexVersion, config.tagSuffix, config.inPlace, config.platforms, config.buildToolId],
      [0, 1_048_576, 'v1', '.lazy', true, ['linux/amd64', 'linux/arm64/v8'], 'my-builder 1.0'],
    );
    assert.deepEqual(
      config.filters.map((f) => f.pattern),
      ['app'],
    );
  });

  test('a value the handler would reject at cold start fails at synth, naming the prop', () => {
    const bad: [Partial<SociIndexerProps>, RegExp][] = [
      [{ spanSize: 100 }, /^spanSize: must be between 1024/],
      [{ minLayerSize: 1.5 }, /^minLayerSize: expected a whole number/],
      [{ tagSuffix: 'bad suffix' }, /^tagSuffix: /],
      [{ platforms: ['amd64'] }, /^platforms: /],
      [{ repositories: ['App'] }, /^repositories: .*lower-case/],
      [{ repositories: ['a:b:c'] }, /^repositories: .*more than one ':'/],
      [{ repositories: [] }, /^repositories: give at least one/],
    ];
    for (const [props, message] of bad) {
      assert.throws(
        () => indexerStack({ repositories: ['app'], ...props }),
        (err: unknown) => err instanceof SociIndexerConfigError && message.test(err.message),
        `${JSON.stringify(props)} should fail with ${message}`,
      );
    }
  });

  test('the default service name differs between instances, so their metrics stay apart', () => {
    const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
    const stack = new Stack(app, 'Test');
    const a = new SociIndexer(stack, 'A', { repositories: ['a'] });
    const b = new SociIndexer(stack, 'B', { repositories: ['b'] });
    assert.notEqual(a.serviceName, b.serviceName);
    assert.match(a.serviceName, /^[A-Za-z0-9-]{1,64}$/);
  });
});

describe('scheduled sync', () => {
  type Fn = { Properties: { Handler: string; ReservedConcurrentExecutions?: number; Environment: { Variables: Record<string, unknown> } } };
  const syncFunction = (template: Template) => {
    const found = Object.entries(template.findResources('AWS::Lambda::Function')).filter(([id]) => id.includes('SyncFunction'));
    assert.equal(found.length, 1);
    return { id: found[0]![0], fn: found[0]![1] as Fn };
  };
  const schedules = (template: Template) =>
    Object.values(template.findResources('AWS::Events::Rule')).filter(
      (r) => (r as { Properties: { ScheduleExpression?: string } }).Properties.ScheduleExpression !== undefined,
    ) as {
      Properties: { ScheduleExpression: string; Targets: { Arn: unknown }[] };
    }[];

  test('once a day by default: the schedule runs the sync entry of the same asset, configured like the indexer', () => {
    const { stack, indexer, template } = indexerStack({ repositories: ['app-*', 'web:release-*'], tagSuffix: '-lazy', minLayerSize: 0 });
    const { id, fn } = syncFunction(template);
    assert.equal(fn.Properties.Handler, 'sync-handler.handler');
    assert.equal(fn.Properties.ReservedConcurrentExecutions, 1);
    const rules = schedules(template);
    assert.equal(rules.length, 1);
    assert.equal(rules[0]!.Properties.ScheduleExpression, 'rate(1 day)');
    assert.deepEqual(
      rules[0]!.Properties.Targets.map((t) => t.Arn),
      [{ 'Fn::GetAtt': [id, 'Arn'] }],
    );
    const vars = fn.Properties.Environment.Variables;
    const indexerVars = (only(template.findResources('AWS::Lambda::Function')) as Fn).Properties.Environment.Variables;
    for (const key of [
      'SOCI_REPOSITORY_FILTERS',
      'SOCI_TAG_SUFFIX',
      'SOCI_MIN_LAYER_SIZE',
      'SOCI_SPAN_SIZE',
      'SOCI_INDEX_VERSION',
      'SOCI_IN_PLACE',
      'SOCI_PLATFORMS',
      'SOCI_EVENT_BUS',
      'SOCI_ZTOC_CACHE',
    ]) {
      assert.deepEqual(vars[key], indexerVars[key], key);
    }
    assert.deepEqual(vars.SOCI_SYNC_FUNCTION, stack.resolve(indexer.function.functionArn));
    assert.equal(vars.SOCI_SYNC_PRUNE, 'false');
    assert.equal(vars.SOCI_SYNC_MAX_INVOCATIONS, '10000');
  });

  test('syncSchedule: a custom schedule, or off (no rule; the function stays for on-demand runs)', () => {
    const custom = indexerStack({ repositories: ['app'], syncSchedule: events.Schedule.cron({ hour: '3', minute: '0' }) }).template;
    assert.deepEqual(
      schedules(custom).map((r) => r.Properties.ScheduleExpression),
      ['cron(0 3 * * ? *)'],
    );
    const off = indexerStack({ repositories: ['app'], syncSchedule: 'off' });
    assert.deepEqual(schedules(off.template), []);
    assert.equal(off.indexer.syncRule, undefined);
    syncFunction(off.template);
  });

  test('IAM: reads and lists the allow-list, invokes the indexer; writes nothing; BatchDeleteImage only with syncPrune, on the allow-list', () => {
    const { stack, indexer, template } = indexerStack({ repositories: ['app-*', 'ml/trainer', 'web:release-*'] });
    const statements = policyStatements(template, 'sync');
    const ecrActions = statements
      .flatMap(actionsOf)
      .filter((a) => a.startsWith('ecr:'))
      .sort();
    assert.deepEqual(ecrActions, [
      'ecr:BatchGetImage',
      'ecr:DescribeImages',
      'ecr:DescribeRepositories',
      'ecr:GetAuthorizationToken',
      'ecr:GetDownloadUrlForLayer',
    ]);
    const allowList = [repoArn('app-*'), repoArn('ml/trainer'), repoArn('web')];
    assert.deepEqual(statements.find((s) => actionsOf(s).includes('ecr:DescribeImages'))!.Resource, allowList);
    assert.deepEqual(statements.find((s) => actionsOf(s).includes('ecr:DescribeRepositories'))!.Resource, repoArn('*'));
    const onStar = statements.filter((s) => s.Resource === '*' || (Array.isArray(s.Resource) && s.Resource.includes('*')));
    assert.deepEqual(onStar.map(actionsOf), [['ecr:GetAuthorizationToken']]);
    const invoke = statements.filter((s) => actionsOf(s).includes('lambda:InvokeFunction'));
    const fnArn = stack.resolve(indexer.function.functionArn);
    assert.deepEqual(
      invoke.map((s) => s.Resource),
      [fnArn],
      'the indexer function only',
    );

    const pruning = policyStatements(
      indexerStack({ repositories: ['app-*', 'ml/trainer', 'web:release-*'], syncPrune: true }).template,
      'sync',
    );
    const deletes = pruning.filter((s) => actionsOf(s).includes('ecr:BatchDeleteImage'));
    assert.deepEqual(
      deletes.map((s) => s.Resource),
      [allowList],
      'BatchDeleteImage on the allow-listed repositories only',
    );
    assert.ok(
      !policyStatements(template, 'indexer').some((s) => actionsOf(s).includes('ecr:BatchDeleteImage')),
      'the indexer never deletes',
    );
  });
});

describe('props documentation', () => {
  const source = readFileSync(new URL('../../infra/soci-indexer.ts', import.meta.url), 'utf8');
  const body = /export interface SociIndexerProps \{\n([\s\S]*?)\n\}/.exec(source)?.[1] ?? '';

  /** Each prop of SociIndexerProps with the lines of its doc comment (the .d.ts keeps the same comments). */
  function documentedProps(): Map<string, string[]> {
    const props = new Map<string, string[]>();
    for (const [, doc = '', name = ''] of body.matchAll(/\/\*\*\n([\s\S]*?)\n\s*\*\/\n\s*readonly (\w+)\??:/g)) {
      props.set(
        name,
        doc.split('\n').map((line) => line.replace(/^\s*\*\s?/, '')),
      );
    }
    return props;
  }

  test('every prop has a summary line and, when optional, one @default on its own line', () => {
    const props = documentedProps();
    const declared = [...body.matchAll(/^ {2}readonly (\w+)(\??):/gm)];
    assert.ok(declared.length > 20, `found ${declared.length} props`);
    for (const [, name = '', optional] of declared) {
      const doc = props.get(name);
      assert.ok(doc, `${name}: no doc comment`);
      assert.match(doc[0] ?? '', /^\S.*\S$/, `${name}: no summary line`);
      const defaults = doc.filter((line) => line.includes('@default'));
      if (optional === '?') {
        assert.equal(defaults.length, 1, `${name}: expected one @default`);
        assert.match(defaults[0]!, /^@default \S/, `${name}: @default not on its own line`);
        assert.equal(doc[doc.indexOf(defaults[0]!) - 1], '', `${name}: no blank line before @default`);
      } else {
        assert.equal(defaults.length, 0, `${name}: a required prop has no default`);
      }
    }
  });

  test('the documented defaults of the build settings are DEFAULTS, which the construct deploys', () => {
    const props = documentedProps();
    const documented = (name: string) => /^@default (\S+)/.exec(props.get(name)?.find((line) => line.startsWith('@default')) ?? '')?.[1];
    const literal = (value: string | number | boolean) => (typeof value === 'string' ? `'${value}'` : String(value));
    for (const name of ['minLayerSize', 'spanSize', 'indexVersion', 'tagSuffix', 'platforms', 'inPlace'] as const) {
      assert.equal(documented(name), literal(DEFAULTS[name]), `${name}: the @default is not DEFAULTS.${name}`);
    }
    const { template } = indexerStack({ repositories: ['app'] });
    const env = only(template.findResources('AWS::Lambda::Function')) as {
      Properties: { Environment: { Variables: Record<string, unknown> } };
    };
    const vars = env.Properties.Environment.Variables;
    assert.deepEqual(
      [
        vars.SOCI_MIN_LAYER_SIZE,
        vars.SOCI_SPAN_SIZE,
        vars.SOCI_INDEX_VERSION,
        vars.SOCI_TAG_SUFFIX,
        vars.SOCI_PLATFORMS,
        vars.SOCI_IN_PLACE,
      ],
      [
        String(DEFAULTS.minLayerSize),
        String(DEFAULTS.spanSize),
        DEFAULTS.indexVersion,
        DEFAULTS.tagSuffix,
        DEFAULTS.platforms,
        String(DEFAULTS.inPlace),
      ],
    );
  });
});
