// What the package promises its users: the Node versions it runs on agree with the packages bundled into
// dist/, dist/ (what the action runs and the command ships) holds nothing but what runs on a Linux runner,
// and the npm package (`npm install -g safe-docker-prune`) holds the command and every file it loads, and
// needs nothing from a registry: dist/ is an ncc bundle, so every package is a devDependency.
import { describe, expect, it } from '@jest/globals';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import * as path from 'node:path';

// npm's own range rules, from the semver package jest already brings (it has no types of its own here).
const { minVersion, satisfies } = createRequire(__filename)('semver') as {
  minVersion(range: string): { version: string } | null;
  satisfies(version: string, range: string): boolean;
};

const root = path.resolve(__dirname, '..');
const json = (file: string) => JSON.parse(readFileSync(path.join(root, file), 'utf8'));
const pkg = json('package.json') as {
  private?: boolean;
  version: string;
  engines: { node: string };
  bin: Record<string, string>;
  files?: string[];
  dependencies?: Record<string, string>;
  devDependencies: Record<string, string>;
  repository?: { url?: string };
};

type LockEntry = {
  dev?: boolean;
  engines?: { node?: string } | string[];
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
};
const lock = json('package-lock.json') as { packages: Record<string, LockEntry> };

/** Every source file below src/. */
function sources(dir = path.join(root, 'src')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : /\.ts$/.test(e.name) ? [path.join(dir, e.name)] : [],
  );
}

/** The packages src/ imports (what ncc bundles into dist/), by name. */
function importedPackages(): string[] {
  const names = new Set<string>();
  for (const file of sources()) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\(\s*|require\(\s*)'([^'./][^']*)'/g)) {
      const spec = m[1];
      if (spec.startsWith('node:') || builtinModules.includes(spec)) continue;
      names.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
    }
  }
  return [...names].sort();
}

/** Where `name` resolves from the lock entry at `from` (npm's node_modules lookup, walking up). */
function resolveInLock(from: string, name: string): string | undefined {
  let at = from;
  for (;;) {
    const candidate = `${at ? `${at}/` : ''}node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
    if (!at) return undefined;
    const up = at.lastIndexOf('/node_modules/');
    at = up < 0 ? '' : at.slice(0, up);
  }
}

/** The lock entries of `names` and everything they depend on (optional dependencies too). */
function closure(names: string[]): string[] {
  const seen = new Set<string>();
  const queue = names.map((n) => resolveInLock('', n)).filter((k): k is string => !!k);
  while (queue.length) {
    const key = queue.pop()!;
    if (seen.has(key)) continue;
    seen.add(key);
    const entry = lock.packages[key];
    for (const dep of Object.keys({ ...entry.dependencies, ...entry.optionalDependencies })) {
      const found = resolveInLock(key, dep);
      if (found) queue.push(found);
    }
  }
  return [...seen].sort();
}

/** npm's `files` patterns as regular expressions over paths relative to the package root. */
const filePatterns = (pkg.files ?? []).map(
  (p) =>
    new RegExp(
      `^${p
        .replace(/^\.?\//, '')
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '[^/]*')}(/.*)?$`,
    ),
);
const packed = (file: string) => filePatterns.some((re) => re.test(file));

/** The chunk files (dist/NNN.index.js) a bundle loads with import(), by file name. */
const chunksOf = (bundle: string) => [
  ...new Set(
    [...readFileSync(bundle, 'utf8').matchAll(/__nccwpck_require__\.e\((?:\/\*.*?\*\/\s*)?(\d+)\)/g)].map(
      (m) => `${m[1]}.index.js`,
    ),
  ),
];

describe('the package', () => {
  it("runs on every Node its engines allow: each bundled package's engines.node accepts the lowest", () => {
    const lowest = minVersion(pkg.engines.node)!.version;
    const bundled = closure(importedPackages());
    // The sources' own imports: the walk starts from real packages (a renamed import would empty it).
    expect(importedPackages()).toEqual(
      expect.arrayContaining(['@actions/core', '@actions/exec', '@actions/github', 'docker-modem']),
    );
    expect(bundled.length).toBeGreaterThan(20);
    const refusing = bundled
      .map((name) => [name, lock.packages[name]] as const)
      .filter(([, p]) => !Array.isArray(p.engines) && p.engines?.node)
      .filter(([, p]) => !satisfies(lowest, (p.engines as { node: string }).node))
      .map(([name, p]) => `${name} needs node ${(p.engines as { node: string }).node}, not ${lowest}`);
    expect(refusing).toEqual([]);
  });

  it('ships no Windows binaries in dist/ (ssh2 carries pagent.exe for Windows SSH agents)', () => {
    const windows = readdirSync(path.join(root, 'dist')).filter((f) => /\.(exe|dll)$/i.test(f));
    expect(windows).toEqual([]);
  });

  it('is publishable: not private, with a repository, a version and a changelog entry for it', () => {
    expect(pkg.private).toBeUndefined();
    expect(pkg.repository?.url).toMatch(/github\.com\/.+\/safe-docker-prune/);
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(readFileSync(path.join(root, 'CHANGELOG.md'), 'utf8')).toMatch(
      new RegExp(`^## \\[${pkg.version.replace(/\./g, '\\.')}\\]`, 'm'),
    );
  });

  it('needs no registry once packed: no runtime dependencies, every package is bundled into dist/', () => {
    expect(pkg.dependencies ?? {}).toEqual({});
    const nonDev = Object.entries(lock.packages).filter(([name, p]) => name !== '' && !p.dev);
    expect(nonDev.map(([name]) => name)).toEqual([]);
    // What src/ imports is installed by `npm ci` (ssh2 comes with docker-modem).
    expect(importedPackages().filter((name) => !resolveInLock('', name))).toEqual([]);
  });

  it('packs the command: its bin, every chunk it loads and the licenses, not the action', () => {
    expect(pkg.bin).toEqual({ 'safe-docker-prune': 'dist/cli.js' });
    expect(packed('dist/cli.js')).toBe(true);
    const chunks = chunksOf(path.join(root, 'dist', 'cli.js'));
    // Today the command loads @actions/exec's chunk (for `docker buildx ls`); the names are webpack
    // module ids, which change with the build's paths, hence the pattern in `files`.
    expect(chunks.length).toBeGreaterThan(0);
    for (const chunk of chunks) {
      expect(existsSync(path.join(root, 'dist', chunk))).toBe(true);
      expect(packed(`dist/${chunk}`)).toBe(true);
    }
    expect(packed('dist/licenses.txt')).toBe(true);
    expect(packed('CHANGELOG.md')).toBe(true);
    // The action's entry and metadata: Actions run them from the repository at a tag, never from npm.
    expect(packed('dist/index.js')).toBe(false);
    expect(packed('action.yml')).toBe(false);
    expect(packed('src/bin.ts')).toBe(false);
  });

  it('dist/cli.js and its chunks require nothing but Node built-ins and files beside them', () => {
    const files = ['cli.js', ...chunksOf(path.join(root, 'dist', 'cli.js'))];
    const outside = files.flatMap((file) =>
      [...readFileSync(path.join(root, 'dist', file), 'utf8').matchAll(/\brequire\((["'])([^"']+)\1\)/g)]
        .map((m) => m[2])
        .filter(
          (spec) => !spec.startsWith('./') && !spec.startsWith('node:') && !builtinModules.includes(spec),
        )
        .map((spec) => `${file}: ${spec}`),
    );
    expect(outside).toEqual([]);
  });
});
