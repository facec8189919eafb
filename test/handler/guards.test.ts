import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../lambda/handler/config.ts';
import { checkEvent, type EcrPush } from '../../lambda/handler/event.ts';
import { skipReason } from '../../lambda/handler/guards.ts';
import { type Fixture, fixture } from './helpers.ts';

const config = parseConfig({ SOCI_REPOSITORY_FILTERS: 'team/*,web:latest' });

function push(name: Fixture, detail: Record<string, unknown> = {}): EcrPush {
  const check = checkEvent(fixture(name, detail));
  assert.equal(check.kind, 'push');
  return (check as { push: EcrPush }).push;
}

describe('skipReason', () => {
  test('tagged images and indexes inside the filters go on to the build', () => {
    assert.equal(skipReason(push('ecr-push-image'), config), undefined);
    assert.equal(skipReason(push('ecr-push-index'), config), undefined);
    assert.equal(skipReason(push('ecr-push-docker-image'), config), undefined);
    assert.equal(
      skipReason(push('ecr-push-image', { 'artifact-media-type': undefined, 'manifest-media-type': undefined }), config),
      undefined,
    );
  });

  test('our own output is never indexed', () => {
    assert.equal(skipReason(push('ecr-push-soci-output'), config)?.code, 'own-output');
    assert.equal(skipReason(push('ecr-push-soci-index-artifact'), config)?.code, 'own-output');
    assert.equal(
      skipReason(push('ecr-push-image', { 'artifact-media-type': 'application/vnd.amazon.soci.index.v1+json' }), config)?.code,
      'own-output',
    );
    // The suffix follows configuration, and applies even outside the filters.
    const dotted = parseConfig({ SOCI_TAG_SUFFIX: '.lazy' });
    assert.equal(skipReason(push('ecr-push-image', { 'image-tag': 'v1.lazy' }), dotted)?.code, 'own-output');
    assert.equal(skipReason(push('ecr-push-soci-output'), dotted), undefined);
    assert.equal(skipReason(push('ecr-push-image', { 'repository-name': 'elsewhere', 'image-tag': 'x-soci' }), config)?.code, 'own-output');
  });

  test('untagged pushes (child manifests) are skipped', () => {
    const skip = skipReason(push('ecr-push-untagged-child'), config);
    assert.equal(skip?.code, 'untagged');
    assert.equal(
      skip!.message,
      'untagged push (a child manifest of a multi-platform image, or pushed by digest): the tagged push is indexed',
    );
  });

  test('non-image artifacts are skipped with what they are', () => {
    assert.match(skipReason(push('ecr-push-signature'), config)?.message ?? '', /^not an image: signature \(Notation\)/);
    assert.match(skipReason(push('ecr-push-sbom'), config)?.message ?? '', /^not an image: SBOM/);
    assert.deepEqual(skipReason(push('ecr-push-image', { 'artifact-media-type': 'application/vnd.in-toto+json' }), config), {
      code: 'not-an-image',
      message: 'not an image: attestation (in-toto) of type application/vnd.in-toto+json',
    });
    assert.deepEqual(skipReason(push('ecr-push-image', { 'artifact-media-type': 'application/vnd.cncf.helm.config.v1+json' }), config), {
      code: 'not-an-image',
      message: 'not an image: Helm chart of type application/vnd.cncf.helm.config.v1+json',
    });
    assert.deepEqual(skipReason(push('ecr-push-image', { 'artifact-media-type': 'application/x-custom' }), config), {
      code: 'not-an-image',
      message: 'not an image: artifact of type application/x-custom',
    });
    assert.deepEqual(skipReason(push('ecr-push-image', { 'image-tag': `sha256-${'a'.repeat(64)}.sig` }), config), {
      code: 'not-an-image',
      message: 'not an image: cosign sig artifact',
    });
    assert.deepEqual(skipReason(push('ecr-push-image', { 'image-tag': `sha256-${'a'.repeat(64)}.att` }), config), {
      code: 'not-an-image',
      message: 'not an image: cosign att artifact',
    });
    assert.deepEqual(skipReason(push('ecr-push-image', { 'image-tag': `sha256-${'a'.repeat(64)}` }), config), {
      code: 'not-an-image',
      message: 'not an image: referrers index (tag schema)',
    });
    assert.equal(
      skipReason(push('ecr-push-image', { 'manifest-media-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' }), config)
        ?.code,
      'not-an-image',
    );
  });

  test("a push to another account's registry is refused, naming where to deploy; the own account goes on", () => {
    const foreign = { ...push('ecr-push-image'), account: '210987654321' };
    const skip = skipReason(foreign, config, '123456789012');
    assert.equal(skip?.code, 'cross-account');
    assert.match(
      skip!.message,
      /account 210987654321's registry, but this function runs in account 123456789012: cross-account indexing is not supported, deploy the indexer in account 210987654321/,
    );
    // Checked before everything else: even our own output of another account is that account's business.
    assert.equal(skipReason({ ...push('ecr-push-soci-output'), account: '210987654321' }, config, '123456789012')?.code, 'cross-account');
    assert.equal(skipReason(push('ecr-push-image'), config, '123456789012'), undefined);
    // Without a known function account (no ARN) nothing is refused on this ground.
    assert.equal(skipReason(foreign, config), undefined);
  });

  test('pushes outside the filters are skipped', () => {
    assert.equal(skipReason(push('ecr-push-image', { 'repository-name': 'other' }), config)?.code, 'filtered-out');
    assert.equal(skipReason(push('ecr-push-docker-image', { 'image-tag': 'v2' }), config)?.code, 'filtered-out');
    assert.equal(skipReason(push('ecr-push-docker-image'), config), undefined);
  });
});
