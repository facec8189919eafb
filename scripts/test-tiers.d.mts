// Types of scripts/test-tiers.mjs, for test/tiers.test.ts.
export function spawnPath(file: string): string[] | undefined;
export function isUnitTest(file: string): boolean;
