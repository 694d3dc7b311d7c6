// Prints the CHANGELOG.md section of one version (its body, without the `## [X.Y.Z] - DATE` heading), for
// the release workflow's GitHub release notes. Fails (exit 1, a message on stderr) when the changelog has no
// such section or the section is empty, so a version is never released without notes.
// Usage: node scripts/release-notes.mjs VERSION [CHANGELOG]   (VERSION as 1.2.3 or v1.2.3)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const [arg, file = join(import.meta.dirname, '..', 'CHANGELOG.md')] = process.argv.slice(2);
const version = (arg ?? '').replace(/^v/, '');
if (!/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/.test(version)) {
  console.error(`usage: release-notes.mjs VERSION [CHANGELOG]; "${arg ?? ''}" is not a version like 1.2.3`);
  process.exit(2);
}

let text;
try {
  text = readFileSync(file, 'utf8');
} catch (e) {
  console.error(`cannot read ${file}: ${e.message}`);
  process.exit(1);
}

const lines = text.split(/\r?\n/);
// `## [1.2.3] - 2026-01-31` (Keep a Changelog), also `## 1.2.3` and `## [1.2.3]` without a date.
const heading = (line) => /^## (?:\[([^\]]+)\]|(\S+))/.exec(line);
const start = lines.findIndex((line) => {
  const m = heading(line);
  return m && (m[1] ?? m[2]).replace(/^v/, '') === version;
});
if (start < 0) {
  console.error(`${file} has no section for ${version} (a heading "## [${version}] - YYYY-MM-DD")`);
  process.exit(1);
}
let end = lines.findIndex((line, i) => i > start && /^## /.test(line));
if (end < 0) end = lines.length;
const body = lines.slice(start + 1, end);
// The link definitions at the end of the file (`[1.2.3]: https://…`) belong to no section.
while (body.length && (/^\s*$/.test(body.at(-1)) || /^\[[^\]]+\]: \S+$/.test(body.at(-1)))) body.pop();
while (body.length && /^\s*$/.test(body[0])) body.shift();
if (body.length === 0) {
  console.error(`${file}: the section for ${version} is empty`);
  process.exit(1);
}
console.log(body.join('\n'));
