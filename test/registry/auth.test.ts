// Credential sources and schemes against a real docker-registry: bearer tokens from a loopback token
// server, the Docker config file, and ECR GetAuthorizationToken through the real SDK and a fake control
// plane (AWS_ENDPOINT_URL_ECR).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { ECR_TOKEN_REFRESH_MARGIN_MS, EcrTokens, ecrCredentialSource } from '../../lambda/registry/ecr-credentials.ts';
import { RegistryError } from '../../lambda/registry/errors.ts';
import { descriptorOf } from '../support/bytes.ts';
import { type FakeAwsServer, startFakeEcr } from '../support/fake-aws.ts';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { type BuiltLayout, buildLayout, deterministicBytes, pushLayout } from '../support/images.ts';
import { type RunningRegistry, startRegistry } from '../support/registry.ts';
import { assertWaitedAtLeast } from '../support/waits.ts';

const layers = [{ compression: 'gzip' as const, files: [{ name: 'f.bin', size: 30_000 }] }];

/** A token server in the style of Docker's: `/token` hands out scoped tokens for basic credentials; every
 *  other request needs a token whose scope covers its repository and action, else 401 with a challenge. */
function tokenGate(user: { username: string; password: string }) {
  const tokens = new Map<string, string[]>();
  const tokenRequests: { scopes: string[]; service: string | null; basic: boolean; at: number }[] = [];
  let realm = '';
  /** Retry-After values for the next token requests, answered 429. */
  const throttled: string[] = [];
  const reject = (req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string>) => {
    req.resume();
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
    return true;
  };
  const gate = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = new URL(req.url ?? '/', 'http://gate');
    if (url.pathname === '/token') {
      const basic = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
      tokenRequests.push({
        scopes: url.searchParams.getAll('scope'),
        service: url.searchParams.get('service'),
        basic: req.headers.authorization === basic,
        at: performance.now(),
      });
      const retryAfter = throttled.shift();
      if (retryAfter !== undefined) return reject(req, res, 429, { 'retry-after': retryAfter });
      if (req.headers.authorization !== basic) return reject(req, res, 401, {});
      const token = randomUUID();
      tokens.set(token, url.searchParams.getAll('scope'));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token, expires_in: 300 }));
      return true;
    }
    const name = /^\/v2\/(.+?)\/(?:manifests|blobs|referrers|tags)\//.exec(url.pathname)?.[1] ?? '';
    const action = req.method === 'GET' || req.method === 'HEAD' ? 'pull' : 'push';
    const granted = tokens.get(String(req.headers.authorization).replace(/^Bearer /, '')) ?? [];
    if (granted.some((s) => s.startsWith(`repository:${name}:`) && s.split(':')[2]!.split(',').includes(action))) return false;
    const scope = `repository:${name}:${action === 'pull' ? 'pull' : 'pull,push'}`;
    return reject(req, res, 401, { 'www-authenticate': `Bearer realm="${realm}",service="test-registry",scope="${scope}"` });
  };
  return {
    gate,
    tokenRequests,
    setRealm: (url: string) => (realm = url),
    throttleNext: (retryAfter: string) => throttled.push(retryAfter),
  };
}

describe('bearer token auth', () => {
  const user = { username: 'robot', password: 'token-pw' };
  const tokens = tokenGate(user);
  let registry: RunningRegistry;
  let proxy: FaultProxy;
  let layout: BuiltLayout;

  before(async () => {
    registry = await startRegistry();
    layout = await buildLayout({ layers, tag: 'v1' });
    await pushLayout(layout, `${registry.host}/test/app:v1`);
    proxy = await startFaultProxy({ upstream: registry.host, gate: tokens.gate });
    tokens.setRealm(`${proxy.url}/token`);
  });
  after(async () => {
    await proxy.stop();
    await registry.stop();
  });

  test('reads and writes with tokens fetched per scope, then reuses them', async () => {
    const target = new RegistryTarget({ registry: proxy.host, repository: 'test/app', credentials: async () => user });
    const desc = await target.resolve('v1');
    assert.equal(desc.digest, layout.root.digest);
    const layer = layout.images[0]!.layers[0]!;
    assert.deepEqual(await target.fetchBytes(layer), layout.blobs.get(layer.digest));
    const content = deterministicBytes('bearer-push', 1000);
    await target.push(descriptorOf(content), content);
    assert.equal(await target.exists(descriptorOf(content)), true);
    const fetched = tokens.tokenRequests.length;
    await target.resolve('v1');
    await target.exists(layer);
    assert.equal(tokens.tokenRequests.length, fetched, 'cached tokens are reused');
    assert.ok(tokens.tokenRequests.every((r) => r.basic && r.service === 'test-registry'));
    const scopes = new Set(tokens.tokenRequests.flatMap((r) => r.scopes));
    assert.deepEqual([...scopes].sort(), ['repository:test/app:pull', 'repository:test/app:pull,push']);
  });

  test('a refused token request fails as unauthorized without echoing the password', async () => {
    const target = new RegistryTarget({
      registry: proxy.host,
      repository: 'test/app',
      credentials: async () => ({ ...user, password: 'wrong-secret' }),
    });
    await assert.rejects(target.resolve('v1'), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.equal(err.kind, 'unauthorized');
      assert.equal(err.message, `registry ${proxy.host}: token for repository:test/app:pull refused (401)`);
      return true;
    });
  });
});

describe('bearer token auth: throttled token server', () => {
  const user = { username: 'robot', password: 'token-pw' };
  const tokens = tokenGate(user);
  let registry: RunningRegistry;
  let proxy: FaultProxy;

  before(async () => {
    registry = await startRegistry();
    await pushLayout(await buildLayout({ layers, tag: 'v1' }), `${registry.host}/test/app:v1`);
    proxy = await startFaultProxy({ upstream: registry.host, gate: tokens.gate });
    tokens.setRealm(`${proxy.url}/token`);
  });
  after(async () => {
    await proxy.stop();
    await registry.stop();
  });

  test('a token request answered 429 is retried after what Retry-After asked, not the short backoff', async () => {
    tokens.throttleNext('1');
    const target = new RegistryTarget({
      registry: proxy.host,
      repository: 'test/app',
      credentials: async () => user,
      retry: { baseDelayMs: 5 },
    });
    await target.resolve('v1');
    const asked = tokens.tokenRequests.map((r) => r.at);
    assert.equal(asked.length, 2, 'the throttled token request and its retry');
    assertWaitedAtLeast(asked[1]! - asked[0]!, 1000, 'before the token retry');
  });
});

describe('Docker config credentials', () => {
  const user = { username: 'AWS', password: 'docker-config-pw' };
  let registry: RunningRegistry;
  let dir: string;
  const savedDockerConfig = process.env.DOCKER_CONFIG;

  before(async () => {
    registry = await startRegistry({ auth: user });
    const layout = await buildLayout({ layers, tag: 'v1' });
    await pushLayout(layout, `${registry.host}/test/app:v1`, { creds: user });
    dir = await mkdtemp(join(tmpdir(), 'docker-config-'));
    process.env.DOCKER_CONFIG = dir;
  });
  after(async () => {
    if (savedDockerConfig === undefined) delete process.env.DOCKER_CONFIG;
    else process.env.DOCKER_CONFIG = savedDockerConfig;
    await rm(dir, { recursive: true, force: true });
    await registry.stop();
  });

  const writeConfig = (config: unknown) => writeFile(join(dir, 'config.json'), JSON.stringify(config));
  const resolveWithDefaults = () => new RegistryTarget({ registry: registry.host, repository: 'test/app' }).resolve('v1');

  test('uses auths[host].auth (base64 user:password) when no credentials are given', async () => {
    await writeConfig({ auths: { [registry.host]: { auth: Buffer.from(`${user.username}:${user.password}`).toString('base64') } } });
    assert.equal((await resolveWithDefaults()).mediaType, 'application/vnd.oci.image.manifest.v1+json');
  });

  test('uses username/password under a URL-style key', async () => {
    await writeConfig({ auths: { [`http://${registry.host}/v2/`]: { username: user.username, password: user.password } } });
    assert.equal((await resolveWithDefaults()).mediaType, 'application/vnd.oci.image.manifest.v1+json');
  });

  describe('credential helpers (tiny fake docker-credential-* scripts on PATH)', () => {
    const savedPath = process.env.PATH;
    let bin: string;
    const helper = (name: string, script: string) =>
      writeFile(join(bin, `docker-credential-${name}`), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    before(async () => {
      bin = await mkdtemp(join(tmpdir(), 'cred-helpers-'));
      process.env.PATH = `${bin}:${savedPath}`;
      // Records what it was asked (stdin, argv) and answers like docker-credential-helpers' stores.
      await helper(
        'good',
        `read -r server; echo "$server $1" > "${bin}/asked"; printf '{"ServerURL":"%s","Username":"${user.username}","Secret":"${user.password}"}' "$server"`,
      );
      await helper('none', 'cat > /dev/null; echo "credentials not found in native keychain"; exit 1');
      await helper('broken', 'cat > /dev/null; echo "keychain is locked" >&2; exit 3');
      await helper('endless', 'cat > /dev/null; exec yes "{"');
      await helper('token', `cat > /dev/null; echo '{"Username":"<token>","Secret":"refresh"}'`);
    });
    after(async () => {
      process.env.PATH = savedPath;
      await rm(bin, { recursive: true, force: true });
    });

    test('credHelpers[host] is run with the host on stdin and its credentials used', async () => {
      await writeConfig({ auths: {}, credHelpers: { [registry.host]: 'good' } });
      assert.equal((await resolveWithDefaults()).mediaType, 'application/vnd.oci.image.manifest.v1+json');
      assert.equal((await readFile(join(bin, 'asked'), 'utf8')).trim(), `${registry.host} get`);
    });

    test('credsStore serves a host without an auths entry', async () => {
      await writeConfig({ credsStore: 'good' });
      assert.equal((await resolveWithDefaults()).mediaType, 'application/vnd.oci.image.manifest.v1+json');
    });

    test('a helper that has nothing stored for the host means anonymous (refused here)', async () => {
      await writeConfig({ credHelpers: { [registry.host]: 'none' } });
      await assert.rejects(
        resolveWithDefaults(),
        (err: unknown) =>
          err instanceof RegistryError && err.kind === 'unauthorized' && /manifest test\/app:v1 unauthorized \(401/.test(err.message),
      );
    });

    test('a failing, missing, babbling or token-returning helper is a clear one-line error, never anonymous', async () => {
      const cases: Array<[string, RegExp]> = [
        ['broken', /credential helper docker-credential-broken \(named in .*config\.json\) failed \(exit 3: keychain is locked\)/],
        ['absent', /docker-credential-absent .* is not installed \(not found on PATH\)/],
        ['endless', /docker-credential-endless .*: output exceeds the 1 MiB limit/],
        ['token', /returned an identity token; identity tokens are not supported/],
        ['../evil', /names an invalid credential helper/],
      ];
      for (const [name, message] of cases) {
        await writeConfig({ credHelpers: { [registry.host]: name } });
        await assert.rejects(resolveWithDefaults(), (err: unknown) => {
          assert.match((err as Error).message, message, name);
          assert.doesNotMatch((err as Error).message, /\n/);
          return true;
        });
      }
    });
  });

  test('without an entry for the host the request stays anonymous and is refused', async () => {
    await writeConfig({ auths: { 'other.example:5000': { auth: Buffer.from('a:b').toString('base64') } } });
    await assert.rejects(resolveWithDefaults(), { kind: 'unauthorized' });
    await rm(join(dir, 'config.json'));
    await assert.rejects(resolveWithDefaults(), { kind: 'unauthorized' });
  });
});

describe('ECR credentials (real SDK, fake control plane via AWS_ENDPOINT_URL_ECR)', () => {
  const password = 'ecr-token-pw';
  let registry: RunningRegistry;
  let ecr: FakeAwsServer;
  let layout: BuiltLayout;
  const tokenCalls = () => ecr.calls.filter((c) => c.operation === 'GetAuthorizationToken');

  before(async () => {
    registry = await startRegistry({ auth: { username: 'AWS', password } });
    layout = await buildLayout({ layers, tag: 'v1' });
    await pushLayout(layout, `${registry.host}/test/app:v1`, { creds: { username: 'AWS', password } });
    ecr = await startFakeEcr({ proxyEndpoint: registry.url, password });
    Object.assign(process.env, {
      AWS_ENDPOINT_URL_ECR: ecr.url,
      AWS_ACCESS_KEY_ID: 'AKIDTEST',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_REGION: 'us-east-1',
    });
  });
  after(async () => {
    await ecr.close();
    await registry.stop();
  });

  test('the token is fetched once, signed for the given region, and shared by targets', async () => {
    const credentials = ecrCredentialSource({ region: 'eu-west-1' });
    const before = tokenCalls().length;
    const a = new RegistryTarget({ registry: registry.host, repository: 'test/app', credentials });
    const b = new RegistryTarget({ registry: registry.host, repository: 'test/other', credentials });
    assert.equal((await a.resolve('v1')).digest, layout.root.digest);
    const content = deterministicBytes('ecr-push', 500);
    await b.push(descriptorOf(content), content);
    assert.equal(tokenCalls().length - before, 1);
    assert.match(String(tokenCalls().at(-1)!.headers.authorization), /\/eu-west-1\/ecr\/aws4_request/);
  });

  test('ECR hosts get ECR credentials automatically, for the region in the host name', async () => {
    const host = '123456789012.dkr.ecr.us-west-2.amazonaws.com';
    // Stand-in for DNS: send the ECR host's requests to the loopback registry.
    const fetchImpl: typeof fetch = (input, init) =>
      fetch(String(input instanceof Request ? input.url : input).replace(`https://${host}`, registry.url), init);
    const target = new RegistryTarget({ registry: host, repository: 'test/app', fetchImpl });
    assert.equal(target.description, `${host}/test/app`);
    assert.equal((await target.resolve('v1')).digest, layout.root.digest);
    assert.match(String(tokenCalls().at(-1)!.headers.authorization), /\/us-west-2\/ecr\/aws4_request/);
  });

  test('one refresh rule: a token is reused until the margin before its expiry, then refreshed before it expires', async () => {
    let clock = Date.now();
    const tokens = new EcrTokens({ now: () => clock });
    const source = ecrCredentialSource({ region: 'us-east-1', tokens });
    const before = tokenCalls().length;
    assert.deepEqual(await source.resolve(registry.host), { username: 'AWS', password });
    const { expiresAt } = await tokens.token('us-east-1');
    assert.equal(tokenCalls().length - before, 1);
    clock = expiresAt - ECR_TOKEN_REFRESH_MARGIN_MS - 1; // just outside the margin: still reused
    await source.resolve(registry.host);
    assert.equal(tokenCalls().length - before, 1);
    clock = expiresAt - ECR_TOKEN_REFRESH_MARGIN_MS; // inside it, the token still valid: refreshed now
    await source.resolve(registry.host);
    assert.equal(tokenCalls().length - before, 2);
    // A caller that needs the token until later (a Lambda deadline) gets a fresh one sooner.
    const later = (await tokens.token('us-east-1')).expiresAt;
    await tokens.token('us-east-1', later - ECR_TOKEN_REFRESH_MARGIN_MS);
    assert.equal(tokenCalls().length - before, 3);
  });

  test('an ECR refusal is reported, and not cached', async () => {
    const provider = ecrCredentialSource({ region: 'us-east-1' });
    ecr.fail('GetAuthorizationToken', { status: 400, type: 'AccessDeniedException', message: 'not allowed' });
    await assert.rejects(provider.resolve(registry.host), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.equal(err.kind, 'unauthorized');
      assert.match(err.message, /ECR GetAuthorizationToken failed \(AccessDeniedException: not allowed\)/);
      return true;
    });
    assert.deepEqual(await provider.resolve(registry.host), { username: 'AWS', password });
  });
});
