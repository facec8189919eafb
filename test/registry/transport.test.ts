import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { nodeTransport } from '../../lambda/registry/transport.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function serve(handler: Handler): Promise<{ server: Server; url: string; connections: () => number }> {
  let connections = 0;
  const server = createServer(handler);
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, connections: () => connections };
}

describe('nodeTransport', () => {
  let a: Awaited<ReturnType<typeof serve>>;
  let b: Awaited<ReturnType<typeof serve>>;
  const seen: Array<{ server: string; path: string; authorization?: string }> = [];

  before(async () => {
    b = await serve((req, res) => {
      seen.push({ server: 'b', path: req.url!, authorization: req.headers.authorization });
      res.end('from b');
    });
    a = await serve((req, res) => {
      seen.push({ server: 'a', path: req.url!, authorization: req.headers.authorization });
      if (req.url === '/same') return void res.writeHead(302, { location: '/final' }).end('moved');
      if (req.url === '/other') return void res.writeHead(307, { location: `${b.url}/final` }).end('moved');
      if (req.url === '/big') return void res.writeHead(200, { 'content-length': String(64 << 20) }).write(Buffer.alloc(1 << 20));
      if (req.url === '/cut') {
        res.writeHead(200, { 'content-length': '1000' });
        res.write(Buffer.alloc(10));
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      }
      if (req.url === '/echo') {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => res.writeHead(201, { 'x-length': String(Buffer.concat(chunks).length), 'x-multi': ['1', '2'] }).end());
        return;
      }
      res.end(JSON.stringify({ path: req.url }));
    });
  });
  after(() => {
    a.server.closeAllConnections();
    b.server.closeAllConnections();
    a.server.close();
    b.server.close();
  });

  it('follows a same-origin redirect with the credentials, a cross-origin one without', async () => {
    seen.length = 0;
    const headers = { authorization: 'Basic c2VjcmV0' };
    assert.equal(
      await (await nodeTransport(new URL(`${a.url}/same`), { headers, redirect: 'follow' }))
        .json()
        .then((j) => (j as { path: string }).path),
      '/final',
    );
    assert.equal(await (await nodeTransport(new URL(`${a.url}/other`), { headers, redirect: 'follow' })).text(), 'from b');
    assert.deepEqual(seen, [
      { server: 'a', path: '/same', authorization: 'Basic c2VjcmV0' },
      { server: 'a', path: '/final', authorization: 'Basic c2VjcmV0' },
      { server: 'a', path: '/other', authorization: 'Basic c2VjcmV0' },
      { server: 'b', path: '/final', authorization: undefined },
    ]);
  });

  it('hands a redirect back when asked to, and reuses the connection after a drained small body', async () => {
    const before = a.connections();
    for (let i = 0; i < 5; i++) {
      const response = await nodeTransport(new URL(`${a.url}/same`), { redirect: 'manual' });
      assert.equal(response.status, 302);
      assert.equal(response.headers.get('location'), '/final');
      await response.body!.cancel();
      assert.equal(response.bodyUsed, true);
    }
    assert.ok(a.connections() - before <= 1, `${a.connections() - before} new connections for 5 requests`);
  });

  it('sends a request body with its length and joins repeated response headers', async () => {
    const response = await nodeTransport(new URL(`${a.url}/echo`), { method: 'PUT', body: new Uint8Array(70_000), redirect: 'manual' });
    assert.equal(response.status, 201);
    assert.equal(response.ok, true);
    assert.equal(response.headers.get('X-Length'), '70000');
    assert.equal(response.headers.get('x-multi'), '1, 2');
    assert.equal(response.headers.has('x-absent'), false);
  });

  it('cancels a large body without reading it', async () => {
    const response = await nodeTransport(new URL(`${a.url}/big`), { redirect: 'manual' });
    await response.body!.cancel(); // would hang if it tried to drain 64 MiB the server never sends
  });

  it('reports a connection cut mid-body to the reader, even when it happened before reading began', async () => {
    const response = await nodeTransport(new URL(`${a.url}/cut`), { redirect: 'manual' });
    await new Promise((resolve) => setTimeout(resolve, 200)); // the cut happens while nobody reads
    let read = 0;
    await assert.rejects(async () => {
      for await (const chunk of response.body!) read += chunk.length;
    });
    assert.ok(read <= 10);
  });

  it('fails with the network error code on a refused connection', async () => {
    const closed = await serve(() => undefined);
    const url = closed.url;
    await new Promise<void>((resolve) => closed.server.close(() => resolve()));
    await assert.rejects(nodeTransport(new URL(url), { redirect: 'manual' }), { code: 'ECONNREFUSED' });
  });

  it('speaks HTTPS, verifying the certificate: a registry is trusted only through the CA store', async () => {
    // ECR and S3 are HTTPS. The test CA is trusted in a child process through NODE_EXTRA_CA_CERTS.
    const dir = mkdtempSync(join(tmpdir(), 'soci-tls-'));
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-days',
        '2',
      ],
      { stdio: 'ignore' },
    );
    const server = createTlsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
      if (req.url === '/start') return void res.writeHead(307, { location: '/blob' }).end();
      res.end(Buffer.alloc(300_000, req.headers.authorization ? 1 : 0));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/start`;
    const probe = fileURLToPath(new URL('../support/transport-probe.ts', import.meta.url));
    const run = async (env: NodeJS.ProcessEnv) =>
      JSON.parse((await promisify(execFile)(process.execPath, ['--import', 'tsx', probe, url], { env })).stdout) as unknown;
    try {
      assert.deepEqual(await run({ ...process.env, NODE_EXTRA_CA_CERTS: cert }), { status: 200, length: 300_000 });
      const untrusted = (await run({ ...process.env, NODE_EXTRA_CA_CERTS: '' })) as { error?: string };
      assert.match(String(untrusted.error), /SELF_SIGNED|UNABLE_TO_VERIFY/);
    } finally {
      server.closeAllConnections();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('sends an idempotent request again on a fresh connection when the server closed the kept-alive one; never a POST', async () => {
    // The server closes the idle connection just as the client reuses it (as a server's keep-alive timeout
    // does under load): the second request on every connection is met by a reset, before any response.
    const onConnection = new WeakMap<object, number>();
    const methods: string[] = [];
    const flaky = await serve((req, res) => {
      const n = (onConnection.get(req.socket) ?? 0) + 1;
      onConnection.set(req.socket, n);
      methods.push(`${req.method} ${n}`);
      if (n === 2) return void req.socket.destroy();
      res.writeHead(200, { 'content-length': '2' }).end(req.method === 'HEAD' ? undefined : 'ok');
    });
    try {
      for (const method of ['GET', 'HEAD', 'PUT']) {
        const first = await nodeTransport(new URL(`${flaky.url}/one`), {
          method,
          redirect: 'manual',
          ...(method === 'PUT' && { body: new Uint8Array([1]) }),
        });
        await first.text();
        await new Promise((resolve) => setImmediate(resolve)); // the connection is back in the pool
        const second = await nodeTransport(new URL(`${flaky.url}/two`), {
          method,
          redirect: 'manual',
          ...(method === 'PUT' && { body: new Uint8Array([2]) }),
        });
        assert.equal(second.status, 200, method);
        await second.text();
      }
      // Each method: a request on a new connection, one reset on its reuse, the same request on a fresh one.
      assert.deepEqual(methods, ['GET 1', 'GET 2', 'GET 1', 'HEAD 1', 'HEAD 2', 'HEAD 1', 'PUT 1', 'PUT 2', 'PUT 1']);
      const connections = flaky.connections();
      await (await nodeTransport(new URL(`${flaky.url}/three`), { method: 'POST', redirect: 'manual' })).text();
      await new Promise((resolve) => setImmediate(resolve));
      await assert.rejects(nodeTransport(new URL(`${flaky.url}/four`), { method: 'POST', redirect: 'manual' }), { code: 'ECONNRESET' });
      assert.equal(flaky.connections(), connections + 1, 'a POST is not sent again');
    } finally {
      flaky.server.closeAllConnections();
      flaky.server.close();
    }
  });

  it('a registry client allowed one attempt survives a kept-alive connection closed by the server', async () => {
    const onConnection = new WeakMap<object, number>();
    const flaky = await serve((req, res) => {
      const n = (onConnection.get(req.socket) ?? 0) + 1;
      onConnection.set(req.socket, n);
      if (n === 2) return void req.socket.destroy();
      const body = Buffer.from(
        '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}',
      );
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'content-length': String(body.length),
        'docker-content-digest': `sha256:${createHash('sha256').update(body).digest('hex')}`,
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    try {
      const target = new RegistryTarget({ registry: flaky.url.slice('http://'.length), repository: 'cache/ztoc', retry: { attempts: 1 } });
      const first = await target.resolve('v1');
      await new Promise((resolve) => setImmediate(resolve));
      const second = await target.resolve('v1');
      assert.deepEqual(second, first);
      assert.ok((await target.fetchBytes(first)).length > 0);
    } finally {
      flaky.server.closeAllConnections();
      flaky.server.close();
    }
  });
});
