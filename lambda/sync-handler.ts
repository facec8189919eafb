// Lambda entry point of the scheduled sync (README "Backfill existing images"): plans over the allow-list
// and fans the work out to the indexer function. Configured like the indexer (same SOCI_* variables) plus
// SOCI_SYNC_FUNCTION, SOCI_SYNC_PRUNE and SOCI_SYNC_MAX_INVOCATIONS; a bad value fails the cold start.
import { syncHandlerFromEnvironment } from './handler/sync-wiring.ts';

export const handler = syncHandlerFromEnvironment(process.env);
