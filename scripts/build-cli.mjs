#!/usr/bin/env node
// Rebuilds the bundles the tests run: the CLI and core (dist/cli.mjs, dist/index.mjs and the workers),
// the construct (dist/cdk.mjs) and the Lambda asset (dist/lambda). `node scripts/build.mjs` builds
// everything the package ships, declarations included.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const build = fileURLToPath(new URL('build.mjs', import.meta.url));
const run = spawnSync(process.execPath, [build, 'cli', 'cdk', 'lambda'], { stdio: 'inherit' });
process.exit(run.status ?? 1);
