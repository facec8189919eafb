// Which test files form the unit tier (`npm run test:unit`): those that need no registry process and no
// external binary. The rule is derived from the sources, so it cannot drift from them: a test file is in
// the unit tier unless it, or a test/ module it imports (transitively), imports node:child_process. That
// is how every registry (test/support/registry.ts), CLI run (test/support/run.ts), image builder
// (test/support/images.ts) and the golden fixtures' unpacking (gzip, pigz, zstd: golden-cache.ts) start
// processes. What the rule cannot see (a process started from lambda/ code, a computed dynamic import) is
// caught while the unit tier runs: scripts/no-spawn-guard.mjs fails any unit test file that spawns.
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const LAMBDA = fileURLToPath(new URL('../lambda', import.meta.url));

const IMPORTS = [
  /(?:^|\n)\s*(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g,
  /(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g,
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
];

function specifiers(file) {
  const text = readFileSync(file, 'utf8');
  return IMPORTS.flatMap((re) => [...text.matchAll(re)].map((m) => m[1]));
}

/**
 * The chain of modules from `file` to one that imports node:child_process, or undefined when there is
 * none (the file is in the unit tier). Relative imports are followed except into lambda/ (the code under
 * test, which the guard watches at run time); packages are not followed.
 */
export function spawnPath(file, seen = new Set()) {
  const path = resolve(file);
  if (seen.has(path)) return undefined;
  seen.add(path);
  for (const spec of specifiers(path)) {
    if (spec === 'node:child_process' || spec === 'child_process') return [path];
    if (!spec.startsWith('.')) continue;
    const next = resolve(dirname(path), spec);
    if (!relative(LAMBDA, next).startsWith('..')) continue;
    const rest = spawnPath(next, seen);
    if (rest) return [path, ...rest];
  }
  return undefined;
}

export function isUnitTest(file) {
  return spawnPath(file) === undefined;
}
