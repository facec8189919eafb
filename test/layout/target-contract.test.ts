// The Target contract on an OCI image layout created in a temporary directory.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { OciLayoutTarget } from '../../lambda/layout/oci-layout.ts';
import { targetContract } from '../support/target-contract.ts';

const scratch = await mkdtemp(join(tmpdir(), 'layout-contract-'));
after(() => rm(scratch, { recursive: true, force: true }));
let opened = 0;

targetContract('layout', {
  open: () => OciLayoutTarget.open(join(scratch, `layout-${opened++}`), { create: true }),
  async corrupt(target, desc) {
    // The file keeps its size: only the digest check can notice.
    const path = join((target as OciLayoutTarget).dir, 'blobs', 'sha256', desc.digest.slice('sha256:'.length));
    const bytes = await readFile(path);
    bytes[0] = bytes[0]! ^ 0xff;
    await writeFile(path, bytes);
  },
});
