// The package version, kept in code so bundles need no package.json at run time (test/package.test.ts
// keeps it equal to package.json's).
export const VERSION = '0.1.0';
