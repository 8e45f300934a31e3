// The version as a literal, for the daemon (status, the ready line) and the CLI's --version where
// bin/memfa does not answer it itself (`memfa verify --version`, `--version` among other words):
// none of them needs to find and parse package.json at run time. bin/memfa answers a lone
// `--version` from package.json without loading this module. test/version.test.ts keeps the two in
// step.
export const VERSION = '0.1.0';
