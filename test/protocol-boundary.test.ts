// protocol/ is the wire contract that the daemon and the CLI share: it imports nothing from the
// rest of src/ (core, daemon, services, store, ...), no package and no Node module, and it
// compiles on the language alone, with one exception: framing.ts reads bytes as Node's Buffer (a
// global, not an import). The client that `memfa verify` loads on every login stays as light:
// at run time it loads node:net and the protocol modules it needs, nothing else.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROTOCOL = path.join(ROOT, 'src', 'protocol');
const protocolFiles = readdirSync(PROTOCOL)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => path.join(PROTOCOL, f));

/** Every module a file names: static imports and exports, type imports, import() and require(). */
function specifiers(file: string): string[] {
  return ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((f) => f.fileName);
}

const inside = (dir: string, file: string) => !path.relative(dir, file).startsWith('..');

test('protocol/ imports only protocol/', () => {
  assert.ok(protocolFiles.length >= 8, `found the protocol modules: ${protocolFiles.join(', ')}`);
  const outside: string[] = [];
  for (const file of protocolFiles) {
    for (const spec of specifiers(file)) {
      const local = spec.startsWith('./') && inside(PROTOCOL, path.resolve(PROTOCOL, spec));
      if (!local) outside.push(`${path.basename(file)} imports ${spec}`);
    }
  }
  assert.deepEqual(outside, [], 'protocol/ may import only its own modules (move a shared type into protocol/, and let the other side import it)');
});

test('protocol/ compiles without Node types (types: []), but for Buffer in framing.ts', () => {
  const program = ts.createProgram(protocolFiles, {
    types: [],
    lib: ['lib.es2022.d.ts'],
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noUncheckedIndexedAccess: true,
    noEmit: true,
  });
  const libDir = path.dirname(ts.getDefaultLibFilePath({}));
  const compiled = program.getSourceFiles().map((f) => path.resolve(f.fileName));
  const foreign = compiled.filter((f) => !inside(PROTOCOL, f) && !inside(libDir, f));
  assert.deepEqual(foreign, [], 'the protocol program pulls in no module from outside protocol/');
  const problems = ts
    .getPreEmitDiagnostics(program)
    .filter((d) => !(d.file !== undefined && path.basename(d.file.fileName) === 'framing.ts' && d.file.text.slice(d.start, (d.start ?? 0) + (d.length ?? 0)) === 'Buffer'))
    .map((d) => `${d.file ? path.basename(d.file.fileName) : '?'}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`);
  assert.deepEqual(problems, [], 'protocol/ uses the language only (framing.ts: and Buffer)');
});

test('the client loads node:net and the protocol modules it needs, nothing else', () => {
  // The compiled module: type-only imports (the method catalogue, the result types) are gone.
  const loaded = specifiers(path.join(ROOT, 'dist', 'src', 'client', 'call.js')).sort();
  assert.deepEqual(loaded, ['../protocol/errors.js', '../protocol/framing.js', '../protocol/jsonrpc.js', 'node:net']);
});
