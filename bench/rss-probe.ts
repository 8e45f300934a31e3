// Preloaded (node --import) into a measured process when GNU time is not available: writes the
// process's peak RSS in kB to $MEMFA_BENCH_RSS_FILE as it exits.
import { writeFileSync } from 'node:fs';

const file = process.env['MEMFA_BENCH_RSS_FILE'];
if (file) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
