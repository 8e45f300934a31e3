// Which packages a compiled module loads, found by walking its relative imports: for the tests
// that keep heavy packages off the login path.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// Compiled to dist/test/helpers/: the compiled sources are in dist/src.
const DIST = fileURLToPath(new URL('../../src/', import.meta.url));

/** The packages a compiled module reaches through its relative imports (dynamic ones too, if asked). */
export function packagesReached(entry: string, dynamic: boolean): Set<string> {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const pending = [path.join(DIST, entry)];
  const patterns = [/(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/g, /(?:^|[\s;])import\s*['"]([^'"]+)['"]/g];
  if (dynamic) patterns.push(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g);
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const pattern of patterns) {
      for (const m of source.matchAll(pattern)) {
        const spec = m[1]!;
        if (spec.startsWith('.')) pending.push(path.resolve(path.dirname(file), spec));
        else packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
  }
  return packages;
}
