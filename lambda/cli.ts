// CLI adapter: `soci-indexer build|ztoc ...` (bin/soci-indexer runs this file).
import { main } from './cli/main.ts';

process.exitCode = await main(process.argv.slice(2));
