import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FilterSyntaxError, matchFilter, parseFilters } from '../../lambda/oci/filters.ts';

function matches(list: string, repository: string, tag?: string): string | undefined {
  return matchFilter(parseFilters(list), repository, tag)?.pattern;
}

describe('repository filters', () => {
  test('a bare repository pattern accepts every tag', () => {
    assert.equal(matches('web', 'web', 'latest'), 'web');
    assert.equal(matches('web', 'web2', 'latest'), undefined);
    assert.equal(matches('web', 'team/web', 'latest'), undefined);
  });

  test('* matches any run of characters, across path components', () => {
    assert.equal(matches('team/*', 'team/app', 'v1'), 'team/*');
    assert.equal(matches('team/*', 'team/sub/app', 'v1'), 'team/*');
    assert.equal(matches('team/*', 'team', 'v1'), undefined);
    assert.equal(matches('*-svc', 'billing-svc', 'v1'), '*-svc');
    assert.equal(matches('*', 'anything/at/all', 'x'), '*');
  });

  test('tag patterns are anchored', () => {
    assert.equal(matches('app:release-*', 'app', 'release-1.2'), 'app:release-*');
    assert.equal(matches('app:release-*', 'app', 'pre-release-1'), undefined);
    assert.equal(matches('app:v1', 'app', 'v10'), undefined);
    assert.equal(matches('app:*', 'app', undefined), undefined, 'a tag pattern never accepts an untagged push');
  });

  test('regex metacharacters in patterns are literal', () => {
    assert.equal(matches('a.b', 'a.b', 'v'), 'a.b');
    assert.equal(matches('a.b', 'axb', 'v'), undefined);
  });

  test('the first matching pattern is reported', () => {
    assert.equal(matches('dev:*, prod*:latest ,*:nightly', 'prod-api', 'latest'), 'prod*:latest');
    assert.equal(matches('dev:*,prod*:latest,*:nightly', 'other', 'nightly'), '*:nightly');
    assert.equal(matches('dev:*,prod*:latest', 'prod-api', 'v1'), undefined);
  });

  test('bad patterns are rejected with a one-line reason', () => {
    for (const bad of ['Web', 'web:tag:x', 'web:bad tag', ' , ', 'web!']) {
      assert.throws(
        () => parseFilters(bad),
        (err: unknown) => err instanceof FilterSyntaxError && !err.message.includes('\n'),
        bad,
      );
    }
  });
});
