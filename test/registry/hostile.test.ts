// Registries that attack the client's memory and time: endless error and token bodies, trickled heads and
// bodies, endless referrers paging, https→http redirects and oversized configs. Each must end quickly with
// a one-line error naming its limit, having read a bounded number of bytes.
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { after, describe, test } from 'node:test';
import { LimitExceededError } from '../../lambda/oci/errors.ts';
import { MEDIA_TYPE_OCI_INDEX } from '../../lambda/oci/media-types.ts';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { RegistryError } from '../../lambda/registry/errors.ts';
import { MAX_REFERRERS_PAGES } from '../../lambda/registry/referrers.ts';
import { createNodeTransport, isDowngrade } from '../../lambda/registry/transport.ts';

const SUBJECT = `sha256:${'a'.repeat(64)}`;
const servers: Array<Server | NetServer> = [];
after(() => {
  for (const server of servers) {
    if ('closeAllConnections' in server) server.closeAllConnections();
    server.close();
  }
});

async function listen<T extends Server | NetServer>(server: T): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Writes `chunk` for as long as the client reads; resolves with the bytes written once the connection is gone. */
function endless(res: ServerResponse, chunk: Buffer): Promise<number> {
  return new Promise((resolve) => {
    let written = 0;
    const pump = () => {
      while (!res.destroyed && !res.writableEnded) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
    };
    res.once('close', () => resolve(written));
    res.on('error', () => undefined); // the client hanging up mid-write is the point
    pump();
  });
}

const MiB = 1 << 20;

describe('hostile registries', () => {
  test('a 404 with an endless body: not found, the body closed after at most 1 MiB is read', async () => {
    let served: Promise<number> | undefined;
    const host = await listen(
      createServer((_req, res) => {
        res.writeHead(404, { 'content-type': 'application/json' });
        served = endless(res, Buffer.alloc(64 * 1024, 0x20));
      }),
    );
    const started = Date.now();
    await assert.rejects(
      new RegistryTarget({ registry: host, repository: 'app', credentials: async () => undefined }).resolve('v1'),
      (err: unknown) => {
        assert.ok(err instanceof RegistryError);
        assert.equal(err.kind, 'not-found');
        assert.equal(err.message, `registry ${host}: manifest app:v1 not found (404; error body over the 1 MiB limit, not read)`);
        return true;
      },
    );
    const written = await served!;
    // What the server could write is the 1 MiB read plus what the socket buffers held: far from unbounded.
    assert.ok(written < 32 * MiB, `server wrote ${written} bytes`);
    assert.ok(Date.now() - started < 60_000);
  });

  test('a token realm streaming endless JSON: LimitExceededError at 1 MiB, connection closed', async () => {
    let served: Promise<number> | undefined;
    let host = '';
    host = await listen(
      createServer((req, res) => {
        if (req.url?.startsWith('/token')) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"token":"');
          served = endless(res, Buffer.alloc(64 * 1024, 0x61));
          return;
        }
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="hostile"` }).end();
      }),
    );
    await assert.rejects(
      new RegistryTarget({ registry: host, repository: 'app', credentials: async () => undefined }).resolve('v1'),
      (err: unknown) => {
        assert.ok(err instanceof LimitExceededError, String(err));
        assert.equal(err.code, 'limit-exceeded');
        assert.equal(err.limit, 'max-token-body-bytes');
        assert.equal(err.message, `registry ${host}: token for repository:app:pull: response body exceeds the 1 MiB limit`);
        return true;
      },
    );
    assert.ok((await served!) < 32 * MiB);
  });

  test('a token realm answering malformed JSON is a permanent, one-line error', async () => {
    let host = '';
    host = await listen(
      createServer((req, res) => {
        if (req.url?.startsWith('/token')) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"token": "abc"');
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token"` }).end();
      }),
    );
    await assert.rejects(
      new RegistryTarget({ registry: host, repository: 'app', credentials: async () => undefined }).resolve('v1'),
      (err: unknown) => {
        assert.ok(err instanceof RegistryError);
        assert.equal(err.kind, 'invalid-response');
        assert.equal(err.transient, false);
        return true;
      },
    );
  });

  test('referrers paging past its cap fails loudly instead of stopping', async () => {
    let pages = 0;
    const host = await listen(
      createServer((_req, res) => {
        pages++;
        res.writeHead(200, { 'content-type': MEDIA_TYPE_OCI_INDEX, link: `</v2/app/referrers/${SUBJECT}?page=${pages}>; rel="next"` });
        res.end(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [] }));
      }),
    );
    const target = new RegistryTarget({ registry: host, repository: 'app', credentials: async () => undefined });
    await assert.rejects(
      target.referrers({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: SUBJECT, size: 10 }),
      (err: unknown) => {
        assert.ok(err instanceof LimitExceededError);
        assert.equal(err.limit, 'max-referrers-pages');
        assert.match(err.message, new RegExp(`referrers of app@${SUBJECT}: more than ${MAX_REFERRERS_PAGES} pages`));
        return true;
      },
    );
    assert.equal(pages, MAX_REFERRERS_PAGES);
  });

  test('an https registry redirecting to http is refused, not followed', async () => {
    const asked: string[] = [];
    const fetchImpl: typeof fetch = async (input) => {
      const url = String(input instanceof Request ? input.url : input);
      asked.push(url);
      return new Response(null, { status: 307, headers: { location: 'http://registry.example.com/plain' } });
    };
    const target = new RegistryTarget({
      registry: 'registry.example.com',
      repository: 'app',
      fetchImpl,
      credentials: async () => undefined,
    });
    await assert.rejects(target.resolve('v1'), (err: unknown) => {
      assert.ok(err instanceof RegistryError);
      assert.equal(err.kind, 'unsupported');
      assert.match(
        err.message,
        /refusing redirect from https:\/\/registry\.example\.com to http:\/\/registry\.example\.com \(https to http\)/,
      );
      return true;
    });
    assert.deepEqual(asked, ['https://registry.example.com/v2/app/manifests/v1']);
    assert.equal(isDowngrade(new URL('https://a/'), new URL('http://a/')), true);
    assert.equal(isDowngrade(new URL('http://a/'), new URL('https://b/')), false);
  });

  test('fetchBytes refuses a descriptor over 64 MiB before asking the registry', async () => {
    let requests = 0;
    const fetchImpl: typeof fetch = async () => {
      requests++;
      return new Response('{}', { status: 200 });
    };
    const target = new RegistryTarget({
      registry: 'registry.example.com',
      repository: 'app',
      fetchImpl,
      credentials: async () => undefined,
    });
    const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: SUBJECT, size: 64 * MiB + 1 };
    await assert.rejects(
      target.fetchBytes(config),
      (err: unknown) => err instanceof LimitExceededError && err.limit === 'max-fetch-bytes' && /over the 64 MiB limit/.test(err.message),
    );
    assert.equal(requests, 0);
  });
});

describe('exchange deadline and minimum throughput (nodeTransport)', () => {
  const timeouts = { exchangeMs: 600, throughputWindowMs: 300, minBytesPerSecond: 2 * MiB };
  const transport = createNodeTransport(timeouts);

  /** A raw server that answers every connection with `script` (bytes, then a delay before the next). */
  async function rawServer(script: (socket: import('node:net').Socket) => void): Promise<string> {
    // The client hangs up on purpose: a write racing that must not become an uncaught EPIPE/ECONNRESET.
    const server = createNetServer((socket) => {
      socket.on('error', () => undefined);
      script(socket);
    });
    return `http://${await listen(server)}`;
  }

  async function readAll(body: AsyncIterable<Uint8Array>, pause = 0): Promise<number> {
    let n = 0;
    for await (const chunk of body) {
      n += chunk.length;
      if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
    }
    return n;
  }

  test('a response head trickled one byte at a time fails at the exchange deadline', async () => {
    const head = Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    const url = await rawServer((socket) => {
      let at = 0;
      socket.once('data', () => {
        const timer = setInterval(
          () => (at < head.length && !socket.destroyed ? socket.write(head.subarray(at, ++at)) : clearInterval(timer)),
          100,
        );
        socket.once('close', () => clearInterval(timer));
      });
    });
    await assert.rejects(
      transport(new URL(`${url}/v2/`), { redirect: 'manual' }),
      (err: unknown) => (err as { code?: string }).code === 'ETIMEDOUT' && /no complete response in 1 s/.test(String(err)),
    );
  });

  test('a small body read whole that trickles fails at the exchange deadline', async () => {
    const url = await rawServer((socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n');
        const timer = setInterval(() => (socket.destroyed ? clearInterval(timer) : socket.write('x')), 50);
        socket.once('close', () => clearInterval(timer));
      });
    });
    // A throughput rule this lax would let it run for 1000 s; the deadline ends it.
    const lax = createNodeTransport({ exchangeMs: 600, minBytesPerSecond: 1, throughputWindowMs: 60_000 });
    const response = await lax(new URL(`${url}/manifest`), { redirect: 'manual', wholeBody: true });
    await assert.rejects(readAll(response.body!), /no complete response in 1 s/);
  });

  test('a streamed body below the minimum rate fails; the same bytes fast, read slowly, do not', async () => {
    const body = Buffer.alloc(256 * 1024, 7);
    const url = await rawServer((socket) => {
      socket.once('data', (request) => {
        socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`);
        if (request.toString().includes('/fast')) return void socket.end(body);
        let at = 0;
        const timer = setInterval(() => {
          if (socket.destroyed || at >= body.length) {
            clearInterval(timer);
            return;
          }
          socket.write(body.subarray(at, at + 1024));
          at += 1024;
        }, 20);
        socket.once('close', () => clearInterval(timer));
      });
    });
    const slow = await transport(new URL(`${url}/slow`), { redirect: 'manual' });
    await assert.rejects(
      readAll(slow.body!),
      (err: unknown) => (err as { code?: string }).code === 'ETIMEDOUT' && /below the 2097152 bytes\/s minimum/.test(String(err)),
    );
    // The reader pausing 150 ms per chunk is its own time, not the server's: a healthy download is never cut.
    const fast = await transport(new URL(`${url}/fast`), { redirect: 'manual' });
    assert.equal(await readAll(fast.body!, 150), body.length);
  });
});
