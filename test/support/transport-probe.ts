// Run as a child process (see transport.test.ts), so that NODE_EXTRA_CA_CERTS can trust a test CA:
// fetches the URL given through nodeTransport, following redirects, and prints the outcome as JSON.
import { nodeTransport } from '../../lambda/registry/transport.ts';

try {
  const response = await nodeTransport(new URL(process.argv[2]!), { redirect: 'follow', headers: { authorization: 'Basic dGVzdA==' } });
  let length = 0;
  for await (const chunk of response.body!) length += chunk.length;
  console.log(JSON.stringify({ status: response.status, length }));
} catch (err) {
  console.log(JSON.stringify({ error: (err as { code?: string }).code ?? String(err) }));
}
