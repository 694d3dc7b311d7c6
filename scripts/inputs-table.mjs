// Prints README.md's inputs and outputs tables from action.yml, the one place the inputs and outputs are
// described: paste the output over the two tables, then `npx prettier --write README.md`.
// __tests__/docs.test.ts fails while README.md's tables and action.yml disagree (names, defaults, text).
// Usage: node scripts/inputs-table.mjs
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
// js-yaml comes with eslint (not a dependency of its own); the test reads action.yml with it too.
import yaml from 'js-yaml';

const action = yaml.load(readFileSync(join(import.meta.dirname, '..', 'action.yml'), 'utf8'));
const cell = (text) => String(text).replace(/\s+/g, ' ').trim().replace(/\|/g, '\\|');
const value = (v) => (v === '' ? 'empty' : `\`${v}\``);

const lines = ['| input | default | description |', '| --- | --- | --- |'];
for (const [name, spec] of Object.entries(action.inputs)) {
  lines.push(`| \`${name}\` | ${value(spec.default ?? '')} | ${cell(spec.description)} |`);
}
lines.push('', '| output | description |', '| --- | --- |');
for (const [name, spec] of Object.entries(action.outputs)) {
  lines.push(`| \`${name}\` | ${cell(spec.description)} |`);
}
console.log(lines.join('\n'));
