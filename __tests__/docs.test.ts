// The documentation against the code: README.md's inputs and outputs tables say what action.yml says (one
// description per input and output, kept in action.yml; `node scripts/inputs-table.mjs` prints the tables),
// action.yml declares the inputs the code reads (INPUT_SPECS), every relative link in README.md and docs/
// leads to a file and heading that exist, and README.md keeps what CI, the tests and new users rely on.
import { describe, expect, it } from '@jest/globals';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { INPUT_SPECS } from '../src/policy/inputs';

// A real YAML parser, from the js-yaml package eslint already brings (it has no types of its own here).
const yaml = createRequire(__filename)('js-yaml') as { load(text: string): unknown };

const root = path.resolve(__dirname, '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

type Declared = Record<string, { description: string; default?: string }>;
const action = yaml.load(read('action.yml')) as { inputs: Declared; outputs: Declared };
const readme = read('README.md');

/** Whitespace collapsed, as a table cell holds a description. */
const normal = (text: string) => text.replace(/\s+/g, ' ').trim();

/** The rows of the first table under `## heading` in README.md, as cells (`\|` unescaped). */
function table(heading: string): string[][] {
  const lines = readme.split('\n');
  const start = lines.indexOf(`## ${heading}`);
  expect(start).toBeGreaterThanOrEqual(0);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('## ')) break;
    if (!line.startsWith('|')) {
      if (rows.length) break;
      continue;
    }
    rows.push(
      line
        .split(/(?<!\\)\|/)
        .slice(1, -1)
        .map((c) => c.trim().replace(/\\\|/g, '|')),
    );
  }
  return rows.slice(2); // the header and the |---| line
}

/** `name` from a cell holding it in backticks. */
function nameOf(cell: string): string {
  const m = /^`([a-z-]+)`$/.exec(cell);
  if (!m) throw new Error(`not a name in backticks: ${cell}`);
  return m[1];
}

/** A default as the README writes it: `value` in backticks, or "empty". */
function defaultOf(cell: string): string {
  if (cell === 'empty') return '';
  const m = /^`(.*)`$/.exec(cell);
  if (!m) throw new Error(`not a default: ${cell}`);
  return m[1];
}

describe("README.md's inputs and outputs tables say what action.yml says", () => {
  it('lists every input of action.yml, in its order, with its default and its description', () => {
    const rows = table('Inputs').map(([name, def, description]) => ({
      name: nameOf(name),
      default: defaultOf(def),
      description: normal(description),
    }));
    const declared = Object.entries(action.inputs).map(([name, spec]) => ({
      name,
      default: String(spec.default ?? ''),
      description: normal(spec.description),
    }));
    expect(rows).toEqual(declared);
  });

  it('lists every output of action.yml, in its order, with its description', () => {
    const rows = table('Outputs').map(([name, description]) => ({
      name: nameOf(name),
      description: normal(description),
    }));
    const declared = Object.entries(action.outputs).map(([name, spec]) => ({
      name,
      description: normal(spec.description),
    }));
    expect(rows).toEqual(declared);
  });

  it('describes inputs that the code reads, and only those (INPUT_SPECS, which --help is made from)', () => {
    expect(Object.keys(action.inputs)).toEqual(INPUT_SPECS.map((s) => s.name));
  });

  it('reads the tables it checks (a table that is not found fails, not passes)', () => {
    expect(table('Inputs').length).toBeGreaterThan(20);
    expect(table('Outputs').length).toBeGreaterThan(10);
  });
});

/** README.md and every page below docs/. */
const pages = ['README.md', ...readdirSync(path.join(root, 'docs')).map((f) => `docs/${f}`)].filter((f) =>
  f.endsWith('.md'),
);

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

function anchorsOf(file: string): Set<string> {
  const text = read(file).replace(/^```[\s\S]*?^```/gm, '');
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1])));
}

describe('links in README.md and docs/', () => {
  it.each(pages)('%s: every relative link leads to a file and heading that exist', (page) => {
    const text = read(page).replace(/^```[\s\S]*?^```/gm, '');
    const broken: string[] = [];
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
      const [file, anchor] = target.split('#');
      const resolved = file ? path.posix.join(path.posix.dirname(page), file) : page;
      if (!existsSync(path.join(root, resolved))) broken.push(`${target} (no ${resolved})`);
      else if (anchor && resolved.endsWith('.md') && !anchorsOf(resolved).has(anchor)) {
        broken.push(`${target} (no heading #${anchor} in ${resolved})`);
      }
    }
    expect(broken).toEqual([]);
  });
});

describe('README.md keeps what others rely on', () => {
  it('has the set-up commands CI runs and the promise that they work on a fresh Debian machine', () => {
    expect(readme).toContain(
      [
        '```sh',
        'npm ci --ignore-scripts',
        "npm run demo   # the action's main job: a report of the local Docker daemon, deleting nothing; prints the summary",
        'npm test       # the whole test suite; integration tests start their own private Docker daemons',
        '```',
      ].join('\n'),
    );
    expect(normal(readme)).toContain('Both commands work on a fresh Debian machine as root');
  });

  it('promises the summary and JSON report on every failure (failreport.itg.test.ts tests it)', () => {
    expect(normal(readme)).toContain('the summary and JSON report are written first');
  });
});
