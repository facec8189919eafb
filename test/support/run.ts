// Small helpers the test files share: read a stream whole, run the CLI as a user does.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './golden.ts';

/** Every chunk of a byte stream, concatenated. */
export async function collect(iterable: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of iterable) chunks.push(chunk);
  return Buffer.concat(chunks);
}

export const BIN = join(repoRoot, 'bin', 'soci-indexer');

/** Runs `bin/soci-indexer` in a child process with `stdin` (empty by default) and `env` added; never rejects. */
export function runCli(
  args: string[],
  stdin = '',
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const options = { maxBuffer: 1 << 26, env: { ...process.env, ...env } };
    const child = execFile(process.execPath, [BIN, ...args], options, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin?.end(stdin);
  });
}
