// The Target contract on a real docker-registry, through a loopback proxy that can corrupt blob downloads
// (the registry itself serves what it stored; a damaged store or a bad proxy looks the same to a client).
import { after } from 'node:test';
import { RegistryTarget } from '../../lambda/registry/client.ts';
import { startFaultProxy } from '../support/fault-proxy.ts';
import { startRegistry } from '../support/registry.ts';
import { targetContract } from '../support/target-contract.ts';

const registry = await startRegistry();
const proxy = await startFaultProxy({ upstream: registry.host });
after(async () => {
  await proxy.stop();
  await registry.stop();
});
let opened = 0;

targetContract('registry', {
  open: async () =>
    new RegistryTarget({
      registry: proxy.host,
      repository: `contract/repo-${opened++}`,
      credentials: async () => undefined,
      retry: { attempts: 1 },
    }),
  async corrupt(_target, _desc, reads) {
    proxy.corruptBlobs(reads);
  },
});
