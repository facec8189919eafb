import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { describe, test } from 'node:test';
import { ConfigError, parseConfig } from '../../lambda/handler/config.ts';
import { DEFAULT_BUILD_TOOL_ID } from '../../lambda/ztoc/builder.ts';

function rejects(env: Record<string, string>, variable: string, pattern: RegExp) {
  assert.throws(
    () => parseConfig(env),
    (err: unknown) => err instanceof ConfigError && err.variable === variable && pattern.test(err.message) && !err.message.includes('\n'),
  );
}

describe('parseConfig', () => {
  test('defaults match the issue and AWS SOCI Index Builder', () => {
    const config = parseConfig({});
    assert.equal(config.minLayerSize, 10485760);
    assert.equal(config.spanSize, 4194304);
    assert.equal(config.indexVersion, 'v2');
    assert.equal(config.tagSuffix, '-soci');
    assert.equal(config.inPlace, false);
    assert.equal(config.platforms, 'all');
    assert.equal(config.eventBus, undefined);
    assert.equal(config.buildToolId, DEFAULT_BUILD_TOOL_ID);
    assert.equal(config.deadlineMarginMs, 15000);
    assert.equal(config.concurrency, availableParallelism(), 'README: CPUs');
    assert.deepEqual(
      config.filters.map((f) => f.pattern),
      ['*:*'],
    );
    assert.equal(config.ztocCache, undefined, 'no zTOC cache unless one is named');
  });

  test('reads every variable', () => {
    const config = parseConfig({
      SOCI_REPOSITORY_FILTERS: 'app-*, ml/trainer:release-*',
      SOCI_MIN_LAYER_SIZE: '0',
      SOCI_SPAN_SIZE: '65536',
      SOCI_INDEX_VERSION: 'V1',
      SOCI_TAG_SUFFIX: '.lazy',
      SOCI_IN_PLACE: 'TRUE',
      SOCI_PLATFORMS: 'linux/amd64, linux/arm64/v8',
      SOCI_EVENT_BUS: 'arn:aws:events:eu-west-1:123456789012:event-bus/pipelines',
      SOCI_BUILD_TOOL_ID: 'AWS SOCI CLI v0.2',
      SOCI_CONCURRENCY: '3',
      SOCI_DEADLINE_MARGIN_MS: '2000',
      SOCI_ZTOC_CACHE: 'soci-indexer/ztoc-cache',
    });
    assert.deepEqual(
      config.filters.map((f) => f.pattern),
      ['app-*', 'ml/trainer:release-*'],
    );
    assert.equal(config.minLayerSize, 0);
    assert.equal(config.spanSize, 65536);
    assert.equal(config.indexVersion, 'v1');
    assert.equal(config.tagSuffix, '.lazy');
    assert.equal(config.inPlace, true);
    assert.deepEqual(config.platforms, ['linux/amd64', 'linux/arm64/v8']);
    assert.equal(config.eventBus, 'arn:aws:events:eu-west-1:123456789012:event-bus/pipelines');
    assert.equal(config.buildToolId, 'AWS SOCI CLI v0.2');
    assert.equal(config.concurrency, 3);
    assert.equal(config.deadlineMarginMs, 2000);
    assert.equal(config.ztocCache, 'soci-indexer/ztoc-cache');
  });

  test('blank values count as unset, except an empty filter list', () => {
    assert.equal(parseConfig({ SOCI_SPAN_SIZE: '  ', SOCI_EVENT_BUS: '' }).spanSize, 4194304);
    assert.equal(parseConfig({ SOCI_EVENT_BUS: '' }).eventBus, undefined);
    assert.equal(parseConfig({ SOCI_EVENT_BUS: 'default' }).eventBus, 'default');
    rejects({ SOCI_REPOSITORY_FILTERS: ' ' }, 'SOCI_REPOSITORY_FILTERS', /empty/);
  });

  test('a malformed value names its variable', () => {
    rejects({ SOCI_MIN_LAYER_SIZE: '10MB' }, 'SOCI_MIN_LAYER_SIZE', /whole number of bytes.*"10MB"/);
    rejects({ SOCI_MIN_LAYER_SIZE: '-1' }, 'SOCI_MIN_LAYER_SIZE', /whole number/);
    rejects({ SOCI_SPAN_SIZE: '1.5' }, 'SOCI_SPAN_SIZE', /whole number/);
    rejects({ SOCI_SPAN_SIZE: '100' }, 'SOCI_SPAN_SIZE', /between 1024/);
    rejects({ SOCI_SPAN_SIZE: '4294967296' }, 'SOCI_SPAN_SIZE', /between/);
    rejects({ SOCI_INDEX_VERSION: 'v3' }, 'SOCI_INDEX_VERSION', /v2 or v1/);
    rejects({ SOCI_TAG_SUFFIX: 'with space' }, 'SOCI_TAG_SUFFIX', /A-Za-z0-9/);
    rejects({ SOCI_IN_PLACE: 'maybe' }, 'SOCI_IN_PLACE', /true or false/);
    rejects({ SOCI_PLATFORMS: 'amd64' }, 'SOCI_PLATFORMS', /os\/arch/);
    rejects({ SOCI_PLATFORMS: ',' }, 'SOCI_PLATFORMS', /os\/arch/);
    rejects({ SOCI_EVENT_BUS: 'arn:aws:sqs:eu-west-1:123456789012:queue' }, 'SOCI_EVENT_BUS', /name or ARN/);
    rejects({ SOCI_BUILD_TOOL_ID: 'a\u0007b' }, 'SOCI_BUILD_TOOL_ID', /printable/);
    rejects({ SOCI_CONCURRENCY: '0' }, 'SOCI_CONCURRENCY', /between 1 and 64/);
    rejects({ SOCI_ZTOC_CACHE: 'Cache' }, 'SOCI_ZTOC_CACHE', /repository name/);
    rejects(
      { SOCI_ZTOC_CACHE: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/cache' },
      'SOCI_ZTOC_CACHE',
      /repository name in the same registry/,
    );
    rejects({ SOCI_DEADLINE_MARGIN_MS: 'soon' }, 'SOCI_DEADLINE_MARGIN_MS', /milliseconds/);
    rejects({ SOCI_REPOSITORY_FILTERS: 'App' }, 'SOCI_REPOSITORY_FILTERS', /lower-case/);
    rejects({ SOCI_REPOSITORY_FILTERS: 'a:b:c' }, 'SOCI_REPOSITORY_FILTERS', /more than one ':'/);
  });
});
