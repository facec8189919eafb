// The Target contract on the in-memory backend (unit tier: no disk, no registry).
import { MemoryTarget } from '../../lambda/memory/memory-target.ts';
import { targetContract } from '../support/target-contract.ts';

let opened = 0;
targetContract('memory', {
  open: async () => new MemoryTarget(`contract-${opened++}`),
  async corrupt(target, desc) {
    const bytes = (target as MemoryTarget).blobs.get(desc.digest)!;
    bytes[0] = bytes[0]! ^ 0xff;
  },
});
