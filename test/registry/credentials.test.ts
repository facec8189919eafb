// The credential chain: explicit > Docker config (and its helpers) > ECR (for ECR hosts) > anonymous,
// with the real sources: a Docker config file in a temporary DOCKER_CONFIG, tiny docker-credential-*
// scripts on PATH, ECR GetAuthorizationToken through the real SDK and a loopback fake, and a real
// docker-registry behind an ECR host name.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import {
  anonymous,
  type CredentialSource,
  chainCredentials,
  explicitCredentials,
  standardCredentialChain,
} from '../../lambda/registry/credentials.ts';
import { dockerConfigSource } from '../../lambda/registry/docker-config.ts';
import { ecrCredentialSource } from '../../lambda/registry/ecr-credentials.ts';
import { type FakeAwsServer, startFakeEcr } from '../support/fake-aws.ts';
import { type BuiltLayout, buildLayout, pushLayout } from '../support/images.ts';
import { type RunningRegistry, startRegistry } from '../support/registry.ts';

const ECR_HOST = '123456789012.dkr.ecr.us-west-2.amazonaws.com';
const basic = (password: string) => ({ username: 'AWS', password });
const saved = { ...process.env };

describe('credential chain', () => {
  let registry: RunningRegistry;
  let layout: BuiltLayout;
  let ecr: FakeAwsServer;
  let dir: string;
  let bin: string;
  const tokenCalls = () => ecr.calls.filter((c) => c.operation === 'GetAuthorizationToken').length;
  const writeConfig = (config: unknown) => writeFile(join(dir, 'config.json'), JSON.stringify(config));
  const authEntry = (password: string) => ({ auth: Buffer.from(`AWS:${password}`).toString('base64') });
  // The real sources, in the standard order; each test picks which ones take part.
  const explicit = explicitCredentials(basic('from-explicit'), ECR_HOST);
  const standard = (...front: CredentialSource[]) => chainCredentials(...front, dockerConfigSource(), ecrCredentialSource(), anonymous);

  before(async () => {
    registry = await startRegistry({ auth: basic('from-ecr') });
    layout = await buildLayout({ layers: [{ compression: 'gzip', files: [{ name: 'f.bin', size: 20_000 }] }], tag: 'v1' });
    await pushLayout(layout, `${registry.host}/test/app:v1`, { creds: basic('from-ecr') });
    ecr = await startFakeEcr({ proxyEndpoint: registry.url, password: 'from-ecr' });
    dir = await mkdtemp(join(tmpdir(), 'chain-config-'));
    bin = await mkdtemp(join(tmpdir(), 'chain-helpers-'));
    await writeFile(join(bin, 'docker-credential-broken'), '#!/bin/sh\ncat > /dev/null; echo "keychain is locked" >&2; exit 3\n', {
      mode: 0o755,
    });
    await writeFile(
      join(bin, 'docker-credential-none'),
      '#!/bin/sh\ncat > /dev/null; echo "credentials not found in native keychain"; exit 1\n',
      { mode: 0o755 },
    );
    Object.assign(process.env, {
      DOCKER_CONFIG: dir,
      PATH: `${bin}:${saved.PATH}`,
      AWS_ENDPOINT_URL_ECR: ecr.url,
      AWS_ACCESS_KEY_ID: 'AKIDTEST',
      AWS_SECRET_ACCESS_KEY: 'secret',
    });
  });
  after(async () => {
    for (const key of ['DOCKER_CONFIG', 'PATH', 'AWS_ENDPOINT_URL_ECR', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
    await ecr?.close();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
    await rm(bin, { recursive: true, force: true });
  });

  test('explicit beats Docker config, which beats ECR, which beats anonymous', async () => {
    await writeConfig({ auths: { [ECR_HOST]: authEntry('from-docker-config') } });
    const calls = tokenCalls();
    assert.deepEqual(await standard(explicit).resolve(ECR_HOST), basic('from-explicit'));
    assert.deepEqual(await standard().resolve(ECR_HOST), basic('from-docker-config'));
    assert.equal(tokenCalls(), calls, 'ECR is not asked while an earlier source answers');
    await writeConfig({ auths: {} });
    assert.deepEqual(await standard().resolve(ECR_HOST), basic('from-ecr'));
    assert.equal(tokenCalls(), calls + 1);
    // Not an ECR host and nothing configured: anonymous.
    assert.equal(await standard().resolve('registry.example.com'), undefined);
  });

  test('a source that has nothing for the host falls through to the next', async () => {
    // Explicit credentials for another host, a config entry for another host, a helper with nothing stored.
    await writeConfig({ auths: { 'other.example:5000': authEntry('other') }, credHelpers: { [ECR_HOST]: 'none' } });
    assert.deepEqual(await standard(explicitCredentials(basic('elsewhere'), 'other.example')).resolve(ECR_HOST), basic('from-ecr'));
  });

  test('a failing helper is a clear one-line error and stops the chain (no quieter fallback)', async () => {
    await writeConfig({ credHelpers: { [ECR_HOST]: 'broken' } });
    const calls = tokenCalls();
    await assert.rejects(standard().resolve(ECR_HOST), (err: unknown) => {
      assert.match(
        (err as Error).message,
        /^registry 123456789012\.dkr\.ecr\.us-west-2\.amazonaws\.com: credential helper docker-credential-broken \(named in .*config\.json\) failed \(exit 3: keychain is locked\)$/,
      );
      assert.doesNotMatch((err as Error).message, /\n/);
      return true;
    });
    assert.equal(tokenCalls(), calls, 'ECR is not asked after a source failed');
    // Explicit credentials come first, so a broken helper does not matter to them.
    assert.deepEqual(await standard(explicit).resolve(ECR_HOST), basic('from-explicit'));
  });

  test('RegistryTarget takes a source; by default the standard chain (here: Docker config, then ECR)', async () => {
    // Stand-in for DNS: the ECR host's requests go to the loopback registry.
    const fetchImpl: typeof fetch = (input, init) =>
      fetch(String(input instanceof Request ? input.url : input).replace(`https://${ECR_HOST}`, registry.url), init);
    const open = (credentials?: CredentialSource) =>
      new RegistryTarget({ registry: ECR_HOST, repository: 'test/app', fetchImpl, ...(credentials && { credentials }) });
    // A stale Docker config entry wins over ECR, and is refused: the order is observable end to end.
    await writeConfig({ auths: { [ECR_HOST]: authEntry('stale') } });
    await assert.rejects(open(standardCredentialChain()).resolve('v1'), { kind: 'unauthorized' });
    await writeConfig({ auths: {} });
    assert.equal((await open(standardCredentialChain()).resolve('v1')).digest, layout.root.digest);
    assert.equal((await open().resolve('v1')).digest, layout.root.digest);
    assert.equal((await open(explicitCredentials(basic('from-ecr'))).resolve('v1')).digest, layout.root.digest);
  });
});
