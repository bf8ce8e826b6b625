// Validates an AsyncAPI document with the AsyncAPI project's parser (@asyncapi/parser): the
// specification's JSON Schema, reference resolution and its default ruleset.
//
// Usage: node asyncapi.mjs FILE
// Prints every diagnostic; exits 1 when the document does not parse or any diagnostic is an
// error or a warning, else prints "FILE: valid AsyncAPI VERSION".

import { readFile } from 'node:fs/promises';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const file = process.argv[2];
if (!file) {
  console.error('usage: node asyncapi.mjs FILE');
  process.exit(2);
}
const text = await readFile(file, 'utf8');
const { document, diagnostics } = await new Parser().parse(text, { source: file });

const names = { 0: 'error', 1: 'warning', 2: 'information', 3: 'hint' };
let failed = !document;
for (const d of diagnostics) {
  const at = d.path.length ? d.path.join('.') : '(document)';
  console.log(`${names[d.severity] ?? d.severity}: ${d.code}: ${at}: ${d.message}`);
  if (d.severity === DiagnosticSeverity.Error || d.severity === DiagnosticSeverity.Warning) {
    failed = true;
  }
}
if (failed) {
  console.log(`${file}: invalid`);
  process.exit(1);
}
console.log(`${file}: valid AsyncAPI ${document.version()}`);
