// The deployable stack and app: context parsing, outputs, cdk-nag, coexistence of two installations,
// and the Lambda asset: built deterministically with the package, deployed as it is (Docker made unusable).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { App } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { SociIndexerConfigError } from '../../infra/soci-indexer.ts';
import { PLACEHOLDER_REPOSITORY, type SociIndexerSettings, SociIndexerStack, settingsFromContext } from '../../infra/stack.ts';
import { goldenLayer } from '../support/golden.ts';

const REPO_ROOT = new URL('../../', import.meta.url).pathname;
const cdkJson = JSON.parse(readFileSync(join(REPO_ROOT, 'cdk.json'), 'utf8')) as { app: string; context: Record<string, unknown> };
const SKIP_BUNDLING = { 'aws:cdk:bundling-stacks': [] };

function appWithFlags(extra: Record<string, unknown> = SKIP_BUNDLING): App {
  return new App({ context: { ...cdkJson.context, ...extra } });
}

// Everything optional switched on, so every resource kind the stack can create is checked.
const FULL_SETTINGS: SociIndexerSettings = {
  repositories: ['app-*', 'ml/trainer', 'web:release-*', '*-svc'],
  eventBus: 'arn:aws:events:eu-west-1:111122223333:event-bus/builds',
  alarmTopicArn: 'arn:aws:sns:eu-west-1:111122223333:ops',
  kmsKeyArns: ['arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'],
  reservedConcurrency: 4,
  logRetentionDays: 90,
  buildToolId: 'ci',
};

describe('settings from context', () => {
  test('command-line strings: comma lists, numbers, booleans', () => {
    const context: Record<string, string> = {
      repositories: 'app-*, ml/trainer ,',
      minLayerSize: '0',
      spanSize: '1048576',
      indexVersion: 'v1',
      inPlace: 'true',
      platforms: 'linux/amd64,linux/arm64',
      timeoutMinutes: '10',
      completionEvents: 'false',
      kmsKeyArns: 'arn:a,arn:b',
      logLevel: 'DEBUG',
      ztocCache: 'platform/ztoc-cache',
      ztocCacheExpiryDays: '14',
      syncSchedule: 'cron(0 3 * * ? *)',
      syncPrune: 'true',
    };
    assert.deepEqual(
      settingsFromContext((key) => context[key]),
      {
        repositories: ['app-*', 'ml/trainer'],
        minLayerSize: 0,
        spanSize: 1_048_576,
        indexVersion: 'v1',
        tagSuffix: undefined,
        inPlace: true,
        platforms: ['linux/amd64', 'linux/arm64'],
        memorySize: undefined,
        timeoutMinutes: 10,
        eventBus: undefined,
        completionEvents: false,
        alarmTopicArn: undefined,
        logRetentionDays: undefined,
        reservedConcurrency: undefined,
        buildToolId: undefined,
        kmsKeyArns: ['arn:a', 'arn:b'],
        logLevel: 'DEBUG',
        ztocCache: 'platform/ztoc-cache',
        ztocCacheExpiryDays: 14,
        syncSchedule: 'cron(0 3 * * ? *)',
        syncPrune: true,
      },
    );
    assert.equal(settingsFromContext((key) => ({ ztocCache: 'false' })[key]).ztocCache, false);
    assert.equal(settingsFromContext((key) => ({ ztocCache: 'true' })[key]).ztocCache, undefined);
  });

  test('cdk.json values: arrays, numbers and booleans as JSON', () => {
    const context: Record<string, unknown> = { repositories: ['a', 'b:v*'], memorySize: 5307, inPlace: false, platforms: 'all' };
    const settings = settingsFromContext((key) => context[key]);
    assert.deepEqual(
      [settings.repositories, settings.memorySize, settings.inPlace, settings.platforms],
      [['a', 'b:v*'], 5307, false, undefined],
    );
  });

  test('malformed values fail with the key named', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ minLayerSize: '10MB' }, /^context minLayerSize: expected a whole number/],
      [{ inPlace: 'yes' }, /^context inPlace: expected true or false/],
      [{ indexVersion: 'v3' }, /^context indexVersion: expected one of v1, v2/],
      [{ tagSuffix: { a: 1 } }, /^context tagSuffix: expected a single value/],
      [{ ztocCache: 'No Such Repo' }, /^context ztocCache: expected true, false or a repository name/],
    ];
    for (const [context, message] of cases) {
      assert.throws(
        () => settingsFromContext((key) => context[key]),
        (err: unknown) => err instanceof SociIndexerConfigError && message.test(err.message),
      );
    }
    assert.throws(
      () => new SociIndexerStack(appWithFlags(), 'S', { settings: { repositories: ['app'], logRetentionDays: 31 } }),
      /logRetentionDays: 31 is not a CloudWatch Logs retention period/,
    );
    assert.throws(
      () => new SociIndexerStack(appWithFlags(), 'S', { settings: { repositories: ['app'], syncSchedule: 'daily' } }),
      /syncSchedule: expected off, rate\(<n> <unit>\) or cron\(\.\.\.\), got "daily"/,
    );
  });
});

describe('stack', () => {
  test('outputs the function, rule, queue and log group; imports the given bus, topic and key', () => {
    const stack = new SociIndexerStack(appWithFlags(), 'SociIndexer', { settings: FULL_SETTINGS });
    const template = Template.fromStack(stack);
    const outputs = template.findOutputs('*');
    assert.deepEqual(Object.keys(outputs).sort(), ['DeadLetterQueueUrl', 'FunctionName', 'LogGroupName', 'RuleName', 'SyncFunctionName']);
    template.hasOutput('FunctionName', { Value: { Ref: Match.stringLikeRegexp('^SociIndexerFunction') } });
    template.hasOutput('RuleName', { Value: { Ref: Match.stringLikeRegexp('^SociIndexerPushRule') } });
    template.hasOutput('DeadLetterQueueUrl', { Value: { Ref: Match.stringLikeRegexp('^SociIndexerDeadLetterQueue') } });
    template.hasResourceProperties('AWS::Lambda::Function', {
      ReservedConcurrentExecutions: 4,
      Environment: { Variables: Match.objectLike({ SOCI_EVENT_BUS: FULL_SETTINGS.eventBus, SOCI_BUILD_TOOL_ID: 'ci' }) },
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 90 });
    template.allResourcesProperties('AWS::CloudWatch::Alarm', { AlarmActions: [FULL_SETTINGS.alarmTopicArn] });
    // The stack is environment-agnostic: nothing resolved from an account at synth.
    assert.deepEqual(stack.resolve(stack.account), { Ref: 'AWS::AccountId' });
  });

  test('without repositories it indexes only a placeholder and warns', () => {
    const stack = new SociIndexerStack(appWithFlags(), 'SociIndexer', { settings: {} });
    Annotations.fromStack(stack).hasWarning('/SociIndexer', Match.stringLikeRegexp('no repositories given'));
    Template.fromStack(stack).hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { detail: Match.objectLike({ 'repository-name': [PLACEHOLDER_REPOSITORY] }) },
    });
  });

  test('cdk-nag AwsSolutions passes; every acknowledgement carries a reason', () => {
    const app = appWithFlags();
    const stack = new SociIndexerStack(app, 'SociIndexer', { settings: FULL_SETTINGS });
    const report = new AwsSolutionsChecks(app).validateScope(stack);
    assert.deepEqual(
      report.violations.map((v) => v.ruleName),
      [],
    );
    assert.equal(report.success, true);

    const acknowledged = stack.node
      .findAll()
      .flatMap((c) =>
        c.node.metadata
          .filter((m) => m.type === 'aws:cdk:acknowledged-rules')
          .flatMap((m) => Object.entries(m.data as Record<string, unknown>)),
      );
    const ids = acknowledged.map(([id]) => id.replace(/^annotation::/i, '')).sort();
    // The indexer's policy and the sync's (which also lists every repository's name: repository/*).
    assert.deepEqual(ids, [
      'AwsSolutions-IAM5[Resource::*]',
      'AwsSolutions-IAM5[Resource::*]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository/*-svc]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository/*-svc]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository/*]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository/app-*]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository/app-*]',
      'AwsSolutions-SQS3',
    ]);
    for (const [id, reason] of acknowledged) assert.match(JSON.stringify(reason), /.{40,}/, `${id} needs a specific reason`);
  });

  test('cdk-nag is not vacuous here: an unprotected queue next to the indexer is reported', () => {
    const app = appWithFlags();
    const stack = new SociIndexerStack(app, 'SociIndexer', { settings: { repositories: ['app'] } });
    new sqs.Queue(stack, 'Unprotected', { encryption: sqs.QueueEncryption.UNENCRYPTED });
    const report = new AwsSolutionsChecks(app).validateScope(stack);
    assert.equal(report.success, false);
    assert.ok(
      report.violations.some((v) => v.ruleName === 'AwsSolutions-SQS4'),
      JSON.stringify(report.violations.map((v) => v.ruleName)),
    );
  });

  test('two installations in one app synthesize side by side with no fixed resource names', () => {
    const app = appWithFlags();
    const teamA = new SociIndexerStack(app, 'SociIndexerTeamA', { settings: { repositories: ['team-a-*'] } });
    const teamB = new SociIndexerStack(app, 'SociIndexerTeamB', { settings: { repositories: ['team-b-*'] } });
    const assembly = app.synth();
    assert.deepEqual(assembly.stacks.map((s) => s.stackName).sort(), ['SociIndexerTeamA', 'SociIndexerTeamB']);
    const named = /^(FunctionName|RoleName|QueueName|LogGroupName|AlarmName|PolicyName|Name)$/;
    for (const stack of [teamA, teamB]) {
      const resources = Template.fromStack(stack).toJSON().Resources as Record<
        string,
        { Type: string; Properties?: Record<string, unknown> }
      >;
      for (const [id, resource] of Object.entries(resources)) {
        // A literal name would clash between stacks; references (FunctionName: {Ref}) are fine, and an
        // IAM inline policy's name is local to its role.
        const fixed = Object.entries(resource.Properties ?? {})
          .filter(([key, value]) => named.test(key) && typeof value === 'string' && resource.Type !== 'AWS::IAM::Policy')
          .map(([key]) => key);
        assert.deepEqual(fixed, [], `${stack.stackName}/${id} (${resource.Type}) sets a fixed name`);
      }
    }
    assert.notEqual(teamA.indexer.serviceName, teamB.indexer.serviceName);
  });
});

describe('app', () => {
  const run = promisify(execFile);
  const synth = async (context: Record<string, unknown>) => {
    const outdir = mkdtempSync(join(tmpdir(), 'soci-indexer-cdk-'));
    const env = { ...process.env, CDK_OUTDIR: outdir, CDK_CONTEXT_JSON: JSON.stringify({ ...cdkJson.context, ...context }) };
    const result = await run(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'infra/app.ts')], { cwd: REPO_ROOT, env }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
    );
    return { ...result, outdir };
  };

  test('cdk.json rebuilds the Lambda asset, then runs the app with tsx', () => {
    assert.equal(cdkJson.app, 'node scripts/build.mjs lambda && npx tsx infra/app.ts');
  });

  test('synthesizes the stack named by context and refuses bad settings in one line', async () => {
    const [ok, bad] = await Promise.all([
      synth({ ...SKIP_BUNDLING, repositories: 'app-*,ml/trainer', stackName: 'SociIndexerCi' }),
      synth({ ...SKIP_BUNDLING, repositories: 'App' }),
    ]);
    try {
      assert.equal(ok.code, 0, ok.stderr);
      const template = JSON.parse(readFileSync(join(ok.outdir, 'SociIndexerCi.template.json'), 'utf8'));
      Template.fromJSON(template).hasResourceProperties('AWS::Events::Rule', {
        EventPattern: { detail: Match.objectLike({ $or: Match.absent(), 'repository-name': [{ prefix: 'app-' }, 'ml/trainer'] }) },
      });
      assert.equal(bad.code, 1);
      assert.match(bad.stderr.trim(), /^soci-indexer: repositories: .*lower-case[^\n]*$/);
    } finally {
      for (const { outdir } of [ok, bad]) rmSync(outdir, { recursive: true, force: true });
    }
  });
});

describe('lambda asset', () => {
  const run = promisify(execFile);
  const buildLambda = async (out: string) => {
    await run(process.execPath, [join(REPO_ROOT, 'scripts/build.mjs'), '--out', out, 'lambda'], { cwd: tmpdir() });
    return join(out, 'lambda');
  };
  const files = (dir: string) => readdirSync(dir).sort();

  test('the package build is deterministic: same bytes from any directory, no absolute path in it', async () => {
    const a = mkdtempSync(join(tmpdir(), 'soci-indexer-asset-'));
    const b = mkdtempSync(join(tmpdir(), 'soci-indexer-asset-'));
    try {
      const [dirA, dirB] = await Promise.all([buildLambda(a), buildLambda(join(b, 'deeper', 'dist'))]);
      // The four entries, and the chunks they share (each JavaScript file with its map).
      const isChunk = (name: string) => /^chunk-[A-Z0-9]{8}\.mjs(\.map)?$/.test(name);
      assert.deepEqual(
        files(dirA).filter((name) => !isChunk(name)),
        [
          'index.mjs',
          'index.mjs.map',
          'layer-worker.mjs',
          'layer-worker.mjs.map',
          'sync-handler.mjs',
          'sync-handler.mjs.map',
          'toc-worker.mjs',
          'toc-worker.mjs.map',
        ],
      );
      const chunks = files(dirA).filter((name) => isChunk(name) && name.endsWith('.mjs'));
      assert.ok(chunks.length > 0, 'the handlers and workers share chunks');
      for (const chunk of chunks) assert.ok(files(dirA).includes(`${chunk}.map`), `${chunk} has its map`);
      assert.deepEqual(files(dirB), files(dirA), 'the same file names (chunk hashes) from another output directory');
      for (const name of files(dirA)) {
        const bytes = readFileSync(join(dirA, name));
        assert.ok(bytes.equals(readFileSync(join(dirB, name))), `${name} differs between two builds`);
        const text = bytes.toString('utf8');
        for (const path of [REPO_ROOT.replace(/\/$/, ''), a, b]) assert.ok(!text.includes(path), `${name} contains ${path}`);
      }
      const map = JSON.parse(readFileSync(join(dirA, 'index.mjs.map'), 'utf8')) as { sources: string[]; sourcesContent?: unknown };
      assert.ok(map.sources.includes('lambda/handler.ts'), 'map sources are named from the repository root');
      assert.equal(map.sourcesContent, undefined, 'the maps carry no sources');
    } finally {
      for (const dir of [a, b]) rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the stack deploys dist/lambda as it is, without bundling or Docker, and the handler and workers load from it', async () => {
    const previousDocker = process.env.CDK_DOCKER;
    process.env.CDK_DOCKER = '/bin/false'; // any Docker use would fail the synthesis
    const outdir = mkdtempSync(join(tmpdir(), 'soci-indexer-bundle-'));
    try {
      const app = new App({ outdir, context: cdkJson.context });
      new SociIndexerStack(app, 'Bundled', { settings: { repositories: ['app'] } });
      const template = app.synth().getStackByName('Bundled').template as {
        Resources: Record<
          string,
          {
            Type: string;
            Properties: { Code?: { S3Key?: string }; Handler?: string; Environment?: { Variables: Record<string, unknown> } };
          }
        >;
      };
      const fn = Object.values(template.Resources).find(
        (r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Handler === 'index.handler',
      );
      assert.ok(fn);
      const assetHash = fn?.Properties.Code?.S3Key?.replace(/\.zip$/, '');
      assert.ok(assetHash, 'the function code is a file asset');
      const assetDir = join(outdir, `asset.${assetHash}`);
      const distLambda = join(REPO_ROOT, 'dist', 'lambda');
      assert.deepEqual(files(assetDir), files(distLambda));
      for (const name of files(assetDir)) {
        assert.ok(readFileSync(join(assetDir, name)).equals(readFileSync(join(distLambda, name))), `${name} is not the built file`);
      }
      const bundle = join(assetDir, 'index.mjs');
      assert.ok(
        readFileSync(bundle, 'utf8').startsWith("import { createRequire as __createRequire } from 'node:module';"),
        'the banner gives CommonJS dependencies a require',
      );

      // Load it as Lambda would: the handler parses its configuration at module load and throws on a bad one.
      // Values CloudFormation resolves at deploy (the bus ARN, the cache repository's name) get a plausible value.
      const variables = {
        ...fn?.Properties.Environment?.Variables,
        SOCI_EVENT_BUS: 'arn:aws:events:eu-west-1:111122223333:event-bus/default',
        SOCI_ZTOC_CACHE: 'sociindexer-ztoccache-abc123',
      };
      const load = `const m = await import(${JSON.stringify(pathToFileURL(bundle).href)}); console.log(typeof m.handler);`;
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', load], {
        env: {
          PATH: process.env.PATH,
          AWS_REGION: 'eu-west-1',
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          ...(variables as Record<string, string>),
        },
      });
      assert.equal(stdout.trim().split('\n').at(-1), 'function');

      // The sync function: the same asset, its own entry, loaded with its own environment.
      const syncFn = Object.values(template.Resources).find(
        (r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Handler === 'sync-handler.handler',
      );
      assert.equal(syncFn?.Properties.Code?.S3Key, fn?.Properties.Code?.S3Key, 'one asset for both functions');
      const syncVariables = {
        ...syncFn?.Properties.Environment?.Variables,
        SOCI_EVENT_BUS: 'arn:aws:events:eu-west-1:111122223333:event-bus/default',
        SOCI_SYNC_FUNCTION: 'arn:aws:lambda:eu-west-1:111122223333:function:indexer',
        SOCI_ZTOC_CACHE: 'soci-indexer/ztoc-cache',
      };
      const loadSync = `const m = await import(${JSON.stringify(pathToFileURL(join(assetDir, 'sync-handler.mjs')).href)}); console.log(typeof m.handler);`;
      const synced = await run(process.execPath, ['--input-type=module', '-e', loadSync], {
        env: {
          PATH: process.env.PATH,
          AWS_REGION: 'eu-west-1',
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
          ...(syncVariables as Record<string, string>),
        },
      });
      assert.equal(synced.stdout.trim().split('\n').at(-1), 'function');

      // The bundled layer worker indexes a layer: the golden tiny zTOC, byte for byte.
      const tiny = goldenLayer('tiny-gnu.tar.gz').path;
      const work = `
        const { Worker } = await import('node:worker_threads');
        const { readFileSync } = await import('node:fs');
        const w = new Worker(new URL('layer-worker.mjs', ${JSON.stringify(pathToFileURL(`${assetDir}/`).href)}), { execArgv: [] });
        const bytes = readFileSync(${JSON.stringify(tiny)});
        w.on('message', (m) => { if (m.type === 'done') { console.log(m.result.summary.digest); w.terminate(); } });
        w.postMessage({ type: 'start', id: 1, options: { spanSize: 4194304, compression: 'gzip', buildToolId: 'AWS SOCI CLI v0.2', prefetchPaths: [] } });
        w.postMessage({ type: 'chunk', id: 1, data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) });
        w.postMessage({ type: 'end', id: 1 });`;
      const worker = await run(process.execPath, ['--input-type=module', '-e', work]);
      assert.equal(worker.stdout.trim(), 'sha256:87b3e0d57e5cd2cd5e10ebf26385ed81e51f17e18921e7ce99faab4014ef651e');
    } finally {
      if (previousDocker === undefined) delete process.env.CDK_DOCKER;
      else process.env.CDK_DOCKER = previousDocker;
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});
