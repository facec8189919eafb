// Preloaded (`node --import`) into a CLI child by the exit tests: every 200 ms writes what keeps the event
// loop alive (process.getActiveResourcesInfo) to $HANDLE_PROBE_FILE, so a child that fails to exit after
// its result says why. Its own timer is unref'd: it never keeps the process alive itself.
import { writeFileSync } from 'node:fs';

const file = process.env.HANDLE_PROBE_FILE;
if (file) {
  setInterval(() => writeFileSync(file, JSON.stringify(process.getActiveResourcesInfo())), 200).unref();
}
