// The version as a literal: `memfa --version` runs often enough in scripts that reading and
// parsing package.json for it is measurable. test/version.test.ts keeps the two in step.
export const VERSION = '0.1.0';
