import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InvalidReferenceError } from '../../lambda/oci/errors.ts';
import {
  formatReference,
  isEcrRepositoryName,
  isRefName,
  isRegisteredDigest,
  isRegistryHost,
  isRepositoryName,
  isTag,
  parseLayoutReference,
  parseReference,
  parseRegistryReference,
  registryReferenceTarget,
} from '../../lambda/oci/reference.ts';

const DIGEST = 'sha256:5669f7e723ef492d58e919abd3462a97794b41eff45486c79e19daf1a6a1ed1c';

describe('registry references', () => {
  const valid: [string, object][] = [
    ['localhost:5000/x', { registry: 'localhost:5000', repository: 'x' }],
    ['localhost/x:v1', { registry: 'localhost', repository: 'x', tag: 'v1' }],
    ['127.0.0.1:5000/a/b:tag', { registry: '127.0.0.1:5000', repository: 'a/b', tag: 'tag' }],
    [
      `123456789012.dkr.ecr.us-east-1.amazonaws.com/app@${DIGEST}`,
      { registry: '123456789012.dkr.ecr.us-east-1.amazonaws.com', repository: 'app', digest: DIGEST },
    ],
    [
      `reg.example.com/team/app:v1.2-rc_3@${DIGEST}`,
      { registry: 'reg.example.com', repository: 'team/app', tag: 'v1.2-rc_3', digest: DIGEST },
    ],
    ['[::1]:5000/app:latest', { registry: '[::1]:5000', repository: 'app', tag: 'latest' }],
    ['docker://localhost:5000/app', { registry: 'localhost:5000', repository: 'app' }],
    ['Registry/app', { registry: 'Registry', repository: 'app' }],
    ['a.b/c__d/e-f---g/h.i', { registry: 'a.b', repository: 'c__d/e-f---g/h.i' }],
    // No registry component: Docker Hub, with library/ for a single component.
    ['nginx', { registry: 'docker.io', repository: 'library/nginx' }],
    ['nginx:1.25', { registry: 'docker.io', repository: 'library/nginx', tag: '1.25' }],
    ['team/app', { registry: 'docker.io', repository: 'team/app' }],
    ['index.docker.io/nginx', { registry: 'docker.io', repository: 'library/nginx' }],
  ];
  for (const [input, expected] of valid) {
    test(input, () => assert.deepEqual(parseRegistryReference(input), { kind: 'registry', ...expected }));
  }

  const invalid: [string, RegExp][] = [
    ['', /empty/],
    ['localhost:5000/', /repository name is empty/],
    ['localhost:5000/App', /lower case/],
    ['localhost:5000/a//b', /path component/],
    ['localhost:5000/a-/b', /path component/],
    ['localhost:5000/app:', /not a valid tag/],
    ['localhost:5000/app:-x', /not a valid tag/],
    [`localhost:5000/app:${'t'.repeat(129)}`, /not a valid tag/],
    ['localhost:5000/app@sha256:abc', /not a digest/],
    [`localhost:5000/app@sha512:${'a'.repeat(128)}`, /only sha256/],
    [`localhost:5000/app@sha256:${'A'.repeat(64)}`, /only sha256/],
    ['https://localhost:5000/app', /prefixes/],
    ['bad_host.com:5000/app', /registry host/],
    ['localhost:port/app', /registry host/],
    ['a'.repeat(64), /image ID/],
    [`example.com/${'a'.repeat(250)}`, /longer than 255/],
  ];
  for (const [input, reason] of invalid) {
    test(`rejects ${JSON.stringify(input.slice(0, 40))}`, () => {
      assert.throws(
        () => parseRegistryReference(input),
        (err: unknown) => {
          assert.ok(err instanceof InvalidReferenceError);
          assert.match(err.message, reason);
          assert.ok(!err.message.includes('\n'));
          return true;
        },
      );
    });
  }

  test('resolution target: tag@digest (pinned, tag kept for the output tag), digest, tag, latest', () => {
    assert.equal(registryReferenceTarget(parseRegistryReference(`h.io/a:v1@${DIGEST}`)), `v1@${DIGEST}`);
    assert.equal(registryReferenceTarget(parseRegistryReference(`h.io/a@${DIGEST}`)), DIGEST);
    assert.equal(registryReferenceTarget(parseRegistryReference('h.io/a:v1')), 'v1');
    assert.equal(registryReferenceTarget(parseRegistryReference('h.io/a')), 'latest');
  });

  test('format round trip', () => {
    for (const input of ['localhost:5000/a/b:t', `h.io/a:v1@${DIGEST}`, 'docker.io/library/nginx']) {
      assert.equal(formatReference(parseReference(input)), input);
    }
  });
});

describe('layout references', () => {
  test('directory and ref-name split at the first colon, as skopeo does', () => {
    assert.deepEqual(parseLayoutReference('oci:sample/layout:latest'), { kind: 'layout', dir: 'sample/layout', refName: 'latest' });
    assert.deepEqual(parseLayoutReference('oci:/tmp/out'), { kind: 'layout', dir: '/tmp/out' });
    assert.deepEqual(parseLayoutReference('oci:/tmp/out:'), { kind: 'layout', dir: '/tmp/out' });
    assert.deepEqual(parseLayoutReference('oci:/l:v1:amd64'), { kind: 'layout', dir: '/l', refName: 'v1:amd64' });
    assert.deepEqual(parseReference('oci:./l:stable/amd64'), { kind: 'layout', dir: './l', refName: 'stable/amd64' });
  });

  test('rejects an empty directory and an invalid ref-name', () => {
    assert.throws(() => parseLayoutReference('oci:'), InvalidReferenceError);
    assert.throws(() => parseLayoutReference('oci::latest'), InvalidReferenceError);
    assert.throws(() => parseLayoutReference('oci:/l:bad name'), /not a valid OCI ref name/);
    assert.throws(() => parseLayoutReference('oci:/l:a//b'), InvalidReferenceError);
    assert.throws(() => parseLayoutReference('/l'), InvalidReferenceError);
  });

  test('ref-name grammar', () => {
    for (const ok of ['latest', 'v1.0', 'a--b', 'a-b_c', 'x@y', 'a+b', 'stable/amd64', 'A9']) assert.equal(isRefName(ok), true, ok);
    for (const bad of ['', '-a', 'a-', 'a/', '/a', 'a b', 'a---b', 'é']) assert.equal(isRefName(bad), false, bad);
  });

  test('format round trip', () => {
    assert.equal(formatReference(parseReference('oci:/tmp/x:v1')), 'oci:/tmp/x:v1');
    assert.equal(formatReference(parseReference('oci:/tmp/x')), 'oci:/tmp/x');
  });
});

describe('the name checks every module uses (the grammar lives only in reference.ts)', () => {
  test('tags, repositories, ECR repositories, hosts and digests', () => {
    assert.ok(isTag('v1.2-rc_3') && isTag('_x') && isTag('a'.repeat(128)));
    assert.ok(!isTag('.x') && !isTag('-x') && !isTag('a'.repeat(129)) && !isTag('a/b') && !isTag(''));
    assert.ok(isRepositoryName('c__d/e-f---g/h.i') && isRepositoryName('a'.repeat(255)));
    assert.ok(!isRepositoryName('Team/app') && !isRepositoryName('a'.repeat(256)) && !isRepositoryName('a//b') && !isRepositoryName('a/'));
    assert.ok(isRepositoryName('a'.repeat(256), 256));
    // ECR's own pattern is narrower: one separator between alphanumerics, up to 256 characters.
    assert.ok(isEcrRepositoryName('team/app-x.y_z') && isEcrRepositoryName('a'.repeat(256)));
    assert.ok(!isEcrRepositoryName('c__d') && !isEcrRepositoryName('e--f') && !isEcrRepositoryName('a'.repeat(257)));
    assert.ok(
      isRegistryHost('localhost:5000') && isRegistryHost('[::1]:5000') && isRegistryHost('123456789012.dkr.ecr.eu-west-1.amazonaws.com'),
    );
    assert.ok(!isRegistryHost('a..b') && !isRegistryHost('-a.example') && !isRegistryHost('a b') && !isRegistryHost(''));
    assert.ok(isRegisteredDigest(`sha256:${'a'.repeat(64)}`) && isRegisteredDigest(`sha512:${'a'.repeat(128)}`));
    assert.ok(!isRegisteredDigest(`sha256:${'A'.repeat(64)}`) && !isRegisteredDigest(`md5:${'a'.repeat(32)}`));
  });
});
