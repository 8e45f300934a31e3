// services/ orchestrates the use cases over ports it defines (ports.ts, store-ports.ts): it runs
// on the pure core, the protocol's vocabulary and the configuration, and names the rest (the
// store, the key ring, the gateways, the audit trail, the daemon) by their types only, so that a
// backend or a transport is swapped in handlers.ts' caller without a service knowing. Nothing of
// it names the daemon, which wires it, at all.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SERVICES = path.join(ROOT, 'src', 'services');
const files = readdirSync(SERVICES)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => path.join(SERVICES, f));

/** Where a service may import values from: itself, the pure core, the protocol, the configuration. */
const VALUES_FROM = ['services', 'core', 'protocol', 'config'].map((d) => path.join(ROOT, 'src', d));

interface Import {
  spec: string;
  typeOnly: boolean;
}

/** Each import and re-export of `file`, and whether it brings in types only. */
function importsOf(file: string): Import[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const found: Import[] = [];
  for (const node of source.statements) {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const named = clause?.namedBindings;
      const allNamedTypes = named !== undefined && ts.isNamedImports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly);
      const typeOnly = clause !== undefined && (clause.isTypeOnly || (clause.name === undefined && allNamedTypes));
      found.push({ spec: node.moduleSpecifier.text, typeOnly });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push({ spec: node.moduleSpecifier.text, typeOnly: node.isTypeOnly });
    }
  }
  return found;
}

const within = (dir: string, target: string) => !path.relative(dir, target).startsWith('..');

test('services/ imports values only from services/, core/, protocol/ and config/, types from elsewhere, nothing from daemon/', () => {
  assert.ok(files.length >= 20, `found the service modules: ${files.length}`);
  const problems: string[] = [];
  for (const file of files) {
    for (const { spec, typeOnly } of importsOf(file)) {
      if (!spec.startsWith('.')) continue; // node: modules and packages are the next check's
      const target = path.resolve(SERVICES, spec);
      const name = `${path.basename(file)} imports ${spec}`;
      if (within(path.join(ROOT, 'src', 'daemon'), target)) problems.push(`${name}: services/ never names the daemon`);
      else if (!typeOnly && !VALUES_FROM.some((d) => within(d, target))) problems.push(`${name}: only its types (import type), through a port`);
    }
  }
  assert.deepEqual(problems, []);
});

test('services/ uses no package, and of Node only node:crypto', () => {
  const problems: string[] = [];
  for (const file of files) {
    for (const { spec, typeOnly } of importsOf(file)) {
      if (spec.startsWith('.') || typeOnly) continue;
      if (spec !== 'node:crypto') problems.push(`${path.basename(file)} imports ${spec}`);
    }
  }
  assert.deepEqual(problems, []);
});
