// Writes the licenses of every package in the bundles, in every chunk, as ncc's --license does for a
// one-file bundle (same format: name, license, license file text, sorted by name). ncc's own file lists
// only one chunk's packages once a bundle has lazily loaded chunks (each chunk overwrites it).
// Usage: node scripts/licenses.mjs OUT STATS.json... (ncc build --stats-out files).
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, sep } from 'node:path';

const [out, ...statsFiles] = process.argv.slice(2);
const packages = new Map();
for (const file of statsFiles) {
  const stats = JSON.parse(readFileSync(file, 'utf8'));
  const modules = stats.modules.flatMap((m) => [m, ...(m.modules ?? [])]);
  for (const m of modules) {
    const path = (m.identifier ?? '').split('!').pop().split('|')[0];
    const dir = packageDirOf(path);
    if (dir && !packages.has(dir)) packages.set(dir, describe(dir));
  }
}
const byName = new Map([...packages.values()].map((p) => [p.name, p]));
const text = [...byName.values()]
  .sort((a, b) => (a.name < b.name ? -1 : 1))
  .map((p) => `${p.name}${p.license ? `\n${p.license}` : ''}${p.text ? `\n${p.text}` : ''}\n\n`)
  .join('')
  .trim();
writeFileSync(out, `${text}\n`);

/** The folder of the package (under node_modules) a module file belongs to. */
function packageDirOf(path) {
  const at = path.lastIndexOf(`${sep}node_modules${sep}`);
  if (at < 0) return undefined;
  const parts = path.slice(at + 14).split(sep);
  return join(path.slice(0, at + 14), ...parts.slice(0, parts[0].startsWith('@') ? 2 : 1));
}

function describe(dir) {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const file = readdirSync(dir).find((f) => /^licen[cs]e/i.test(f) && !statSync(join(dir, f)).isDirectory());
  const text = file ? readFileSync(join(dir, file), 'utf8').replace(/\r\n/g, '\n') : undefined;
  const license = pkg.license ?? pkg.licenses?.[0];
  return { name: pkg.name, license: typeof license === 'string' ? license : license?.type, text };
}
