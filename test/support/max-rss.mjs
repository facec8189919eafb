// Preloaded (`node --import`) into a CLI child process by tests that bound its memory: writes the
// process's peak RSS (KiB, worker threads included) to $MAX_RSS_FILE when it exits.
import { writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

if (isMainThread && process.env.MAX_RSS_FILE) {
  const file = process.env.MAX_RSS_FILE;
  process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
}
