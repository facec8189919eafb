// Private copies of the repository's sample layout and the golden image layout, one per test, so no test
// sees what another one wrote. Copies live under a scratch directory removed when the file's tests end.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { OciLayoutTarget } from '../../lambda/layout/oci-layout.ts';
import { goldenPath, repoRoot } from './golden.ts';

/** The multi-platform sample (linux/amd64 + linux/arm64/v8, three gzip layers each, tag `latest`). */
export const SAMPLE_LAYOUT = join(repoRoot, 'sample', 'layout');

export interface LayoutCopy {
  dir: string;
  layout: OciLayoutTarget;
}

/**
 * Returns a function that copies `from` (default: the sample layout) into a fresh directory each call, or,
 * given `make`, lets it fill a fresh empty directory instead.
 */
export async function layoutCopier(prefix: string): Promise<(from?: string, make?: (dir: string) => Promise<void>) => Promise<LayoutCopy>> {
  const scratch = await mkdtemp(join(tmpdir(), `soci-${prefix}-`));
  after(() => rm(scratch, { recursive: true, force: true }));
  let copies = 0;
  return async (from = SAMPLE_LAYOUT, make) => {
    const dir = join(scratch, `layout-${copies++}`);
    if (make) await make(dir);
    else await cp(from, dir, { recursive: true });
    return { dir, layout: await OciLayoutTarget.open(dir) };
  };
}

/** The golden single-platform image layout (tag `golden`). */
export function goldenLayoutDir(): string {
  return goldenPath('image-layout');
}
