import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkEvent } from '../../lambda/handler/event.ts';
import { fixture } from './helpers.ts';

describe('checkEvent', () => {
  test('a real-shaped push event yields every field', () => {
    const check = checkEvent(fixture('ecr-push-image'));
    assert.deepEqual(check, {
      kind: 'push',
      push: {
        eventId: '4f5ec4d5-4de4-7aad-a046-56d5cfe1df0e',
        account: '123456789012',
        region: 'eu-west-1',
        repository: 'team/app',
        digest: 'sha256:3c949327e32569aff0c532905dcb9626892e4c9b109be08027bb1e44f7f96518',
        tag: 'v1.2.3',
        manifestMediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactMediaType: 'application/vnd.oci.image.config.v1+json',
      },
    });
  });

  test('an untagged push (image-tag "" as ECR sends it, or absent) has no tag', () => {
    const untagged = checkEvent(fixture('ecr-push-untagged-child'));
    assert.equal(untagged.kind, 'push');
    assert.equal(untagged.kind === 'push' && untagged.push.tag, undefined);
    const absent = checkEvent(
      fixture('ecr-push-image', { 'image-tag': undefined, 'manifest-media-type': undefined, 'artifact-media-type': undefined }),
    );
    assert.equal(absent.kind === 'push' && absent.push.tag, undefined);
    assert.equal(absent.kind === 'push' && absent.push.manifestMediaType, undefined);
  });

  test('other ECR events and other sources are foreign, not malformed', () => {
    for (const [event, reason] of [
      [fixture('ecr-image-scan'), /detail-type "ECR Image Scan"/],
      [fixture('ecr-delete-image'), /action-type "DELETE"/],
      [fixture('ecr-push-failed'), /result "FAILURE"/],
      [{ ...fixture('ecr-push-image'), source: 'my.app' }, /source "my.app"/],
    ] as const) {
      const check = checkEvent(event);
      assert.equal(check.kind, 'foreign');
      assert.match(check.kind === 'foreign' ? check.reason : '', reason);
    }
  });

  test('missing fields and wrong types are listed', () => {
    const check = checkEvent(fixture('ecr-push-image', { 'repository-name': undefined, 'image-digest': 42, 'image-tag': ['v1'] }));
    assert.equal(check.kind, 'malformed');
    assert.deepEqual(check.kind === 'malformed' && check.problems, [
      'detail.repository-name is missing',
      'detail.image-digest is not a string (42)',
      'detail.image-tag is not a string (["v1"])',
    ]);
  });

  test('values that could not come from ECR are rejected', () => {
    const bad: Record<string, unknown>[] = [
      { 'repository-name': 'Team/App' },
      { 'repository-name': '../etc' },
      { 'image-digest': 'sha256:abc' },
      { 'image-digest': 'md5:3c949327e32569aff0c532905dcb9626' },
      { 'image-tag': 'v1 latest' },
      { 'image-tag': 'x'.repeat(129) },
      { 'manifest-media-type': 'not a media type' },
      { 'artifact-media-type': 7 },
    ];
    for (const detail of bad) assert.equal(checkEvent(fixture('ecr-push-image', detail)).kind, 'malformed', JSON.stringify(detail));
  });

  test('non-objects are malformed and quoted briefly', () => {
    for (const event of [null, 'push', 3, [fixture('ecr-push-image')]]) assert.equal(checkEvent(event).kind, 'malformed');
    const check = checkEvent({ ...fixture('ecr-push-image'), detail: 'x'.repeat(500) });
    assert.equal(check.kind, 'malformed');
    const long = checkEvent(fixture('ecr-push-image', { 'repository-name': 'x'.repeat(500) }));
    assert.ok(long.kind === 'malformed' && long.problems[0]!.length < 150);
  });
});
