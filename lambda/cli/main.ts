// Command dispatch and the error policy: bad input is one line on stderr and a non-zero exit, never a
// stack trace (unless SOCI_INDEXER_DEBUG is set).
import { VERSION } from '../version.ts';
import { UsageError } from './common.ts';
import { ZTOC_USAGE, ztocCommand } from './ztoc-commands.ts';

const USAGE = `soci-indexer: build SOCI indexes so ECS/Fargate can lazy-load container images

Usage:
  soci-indexer build <image> [options]     index an image in a registry or an OCI layout (see build --help)
  soci-indexer sync <registry> --repositories P  index, repair and prune a whole registry (see sync --help)
  soci-indexer ztoc build|info|verify ...  work with single layers and zTOCs (see ztoc --help)
  soci-indexer --version

${ZTOC_USAGE}`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'ztoc':
        return await ztocCommand(rest);
      case 'sync': {
        const { syncCommand } = await import('./sync-command.ts');
        return await syncCommand(rest);
      }
      case 'build': {
        const { buildCommand } = await import('./build-command.ts');
        return await buildCommand(rest);
      }
      case '--version':
      case '-v':
        console.log(VERSION);
        return 0;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (err) {
    return reportError(err);
  }
}

export function reportError(err: unknown): number {
  if (process.env.SOCI_INDEXER_DEBUG) console.error(err);
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith?.('ERR_PARSE_ARGS')) {
    console.error(`soci-indexer: ${(err as Error).message} (see --help)`);
    return 2;
  }
  const message = err instanceof Error ? err.message : String(err);
  console.error(`soci-indexer: error: ${message.split('\n')[0]}`);
  return 1;
}
