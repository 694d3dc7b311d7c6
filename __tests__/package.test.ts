// What the package promises its users: the Node versions it runs on agree with its dependencies', and
// dist/ (what the action runs and the command ships) holds nothing but what runs on a Linux runner.
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';

// npm's own range rules, from the semver package jest already brings (it has no types of its own here).
const { minVersion, satisfies } = createRequire(__filename)('semver') as {
  minVersion(range: string): { version: string } | null;
  satisfies(version: string, range: string): boolean;
};

const root = path.resolve(__dirname, '..');
const json = (file: string) => JSON.parse(readFileSync(path.join(root, file), 'utf8'));

describe('the package', () => {
  it("runs on every Node its engines allow: each runtime dependency's engines.node accepts the lowest", () => {
    const ours: string = json('package.json').engines.node;
    const lowest = minVersion(ours)!.version;
    const packages = json('package-lock.json').packages as Record<
      string,
      { dev?: boolean; engines?: { node?: string } | string[] }
    >;
    const refusing = Object.entries(packages)
      .filter(([name, p]) => name !== '' && !p.dev && !Array.isArray(p.engines) && p.engines?.node)
      .filter(([, p]) => !satisfies(lowest, (p.engines as { node: string }).node))
      .map(([name, p]) => `${name} needs node ${(p.engines as { node: string }).node}, not ${lowest}`);
    expect(refusing).toEqual([]);
  });

  it('ships no Windows binaries in dist/ (ssh2 carries pagent.exe for Windows SSH agents)', () => {
    const windows = readdirSync(path.join(root, 'dist')).filter((f) => /\.(exe|dll)$/i.test(f));
    expect(windows).toEqual([]);
  });
});
