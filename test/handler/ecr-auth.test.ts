import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ECRClient } from '@aws-sdk/client-ecr';
import { EcrAuth } from '../../lambda/handler/ecr-auth.ts';
import { SociError } from '../../lambda/soci/types.ts';
import { type FakeAwsServer, startFakeEcr } from '../support/fake-aws.ts';
import { freePort } from '../support/registry.ts';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' };

describe('EcrAuth against an awsJson1.1 GetAuthorizationToken server', () => {
  let ecr: FakeAwsServer;
  let shortLived: FakeAwsServer;
  before(async () => {
    ecr = await startFakeEcr({ proxyEndpoint: 'https://123456789012.dkr.ecr.eu-west-1.amazonaws.com', password: 'pa:ss/word' });
    shortLived = await startFakeEcr({ proxyEndpoint: 'http://127.0.0.1:5000', password: 'pw', validForMs: 10 * 60_000 });
  });
  after(async () => {
    await ecr.close();
    await shortLived.close();
  });

  test('AWS_ENDPOINT_URL_ECR alone points the real SDK client at the fake', async () => {
    const saved = process.env.AWS_ENDPOINT_URL_ECR;
    process.env.AWS_ENDPOINT_URL_ECR = ecr.url;
    try {
      const before = ecr.calls.length;
      const auth = new EcrAuth(() => new ECRClient({ region: 'eu-west-1', credentials }));
      const access = await auth.access(Date.now());
      assert.equal(ecr.calls.length, before + 1);
      assert.equal(ecr.calls.at(-1)!.operation, 'GetAuthorizationToken');
      assert.match(
        String(ecr.calls.at(-1)!.headers.authorization),
        /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/ecr\/aws4_request/,
      );
      assert.equal(access.endpoint.href, 'https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/');
      // The password may itself contain ':'; only the first one separates the user.
      assert.deepEqual(access.credentials, { username: 'AWS', password: 'pa:ss/word' });
      assert.ok(access.expiresAt > Date.now() + 11 * 3600_000);
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_ECR;
      else process.env.AWS_ENDPOINT_URL_ECR = saved;
    }
  });

  test('the token is reused across invocations until it nears expiry', async () => {
    const auth = new EcrAuth(() => new ECRClient({ region: 'eu-west-1', credentials, endpoint: ecr.url }));
    const before = ecr.calls.length;
    const [a, b] = await Promise.all([auth.access(Date.now()), auth.access(Date.now())]);
    await auth.access(Date.now() + 60_000);
    assert.equal(ecr.calls.length, before + 1, 'concurrent and later calls share one GetAuthorizationToken');
    assert.deepEqual(a, b);
    // A build that must run past the token's expiry gets a fresh token.
    await auth.access(Date.now() + 13 * 3600_000);
    assert.equal(ecr.calls.length, before + 2);
  });

  test('a token about to expire is replaced', async () => {
    let clock = Date.now();
    const auth = new EcrAuth(
      () => new ECRClient({ region: 'eu-west-1', credentials, endpoint: shortLived.url }),
      () => clock,
    );
    const before = shortLived.calls.length;
    await auth.access(clock);
    await auth.access(clock);
    assert.equal(shortLived.calls.length, before + 1);
    clock += 6 * 60_000; // within five minutes of the ten-minute expiry
    const access = await auth.access(clock);
    assert.equal(shortLived.calls.length, before + 2);
    assert.equal(access.endpoint.href, 'http://127.0.0.1:5000/');
  });

  test('failures are classified and not cached', async () => {
    const auth = new EcrAuth(() => new ECRClient({ region: 'eu-west-1', credentials, endpoint: ecr.url, maxAttempts: 1 }));
    ecr.fail('GetAuthorizationToken', { status: 400, type: 'ThrottlingException', message: 'Rate exceeded' });
    await assert.rejects(
      auth.access(Date.now()),
      (err: unknown) => err instanceof SociError && err.kind === 'transient' && /ThrottlingException: Rate exceeded/.test(err.message),
    );
    ecr.fail('GetAuthorizationToken', { status: 500, type: 'ServerException' });
    await assert.rejects(auth.access(Date.now()), (err: unknown) => err instanceof SociError && err.kind === 'transient');
    ecr.fail('GetAuthorizationToken', {
      status: 400,
      type: 'AccessDeniedException',
      message: 'not authorized to perform ecr:GetAuthorizationToken',
    });
    await assert.rejects(
      auth.access(Date.now()),
      (err: unknown) => err instanceof SociError && err.kind === 'permanent' && /AccessDenied/.test(err.message),
    );
    const access = await auth.access(Date.now());
    assert.equal(access.credentials.password, 'pa:ss/word');
  });

  test('an unreachable endpoint is a transient failure', async () => {
    // A loopback port that was just bound and closed: nothing listens there (no fixed port guessed).
    const port = await freePort();
    const auth = new EcrAuth(
      () => new ECRClient({ region: 'eu-west-1', credentials, endpoint: `http://127.0.0.1:${port}`, maxAttempts: 1 }),
    );
    await assert.rejects(auth.access(Date.now()), (err: unknown) => {
      assert.ok(err instanceof SociError, String(err));
      assert.equal(err.kind, 'transient');
      assert.match(err.message, /ECONNREFUSED/);
      return true;
    });
  });
});
