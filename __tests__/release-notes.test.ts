// scripts/release-notes.mjs, which the release workflow runs for the GitHub release's notes: one version's
// CHANGELOG.md section, and a failure (so no release) when there is none.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..');
const SCRIPT = path.join(root, 'scripts', 'release-notes.mjs');
let temp: string;

function notes(...args: string[]) {
  const r = spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function changelog(text: string): string {
  const file = path.join(temp, `CHANGELOG-${Math.random().toString(36).slice(2)}.md`);
  writeFileSync(file, text);
  return file;
}

const SAMPLE = `# Changelog

Intro text.

## [Unreleased]

### Fixed

- Something not released yet.

## [1.2.0] - 2026-03-01

### Added

- A flag.
- [A link](https://example.com) in a section.

## [1.1.10] - 2026-02-01

- Ten.

## [1.1.1] - 2026-01-15

- One.

## [1.0.0] - 2026-01-01

- First.

[Unreleased]: https://example.com/compare/v1.2.0...HEAD
[1.2.0]: https://example.com/releases/tag/v1.2.0
[1.0.0]: https://example.com/releases/tag/v1.0.0
`;

beforeAll(() => {
  temp = mkdtempSync(path.join(tmpdir(), 'sdp-notes-'));
});
afterAll(() => rmSync(temp, { recursive: true, force: true }));

describe('release-notes.mjs', () => {
  it("prints one version's section, without its heading, up to the next", () => {
    const r = notes('1.2.0', changelog(SAMPLE));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('### Added\n\n- A flag.\n- [A link](https://example.com) in a section.\n');
  });

  it('takes the tag form (v1.1.1) and never a version that only starts the same (1.1.10)', () => {
    const file = changelog(SAMPLE);
    expect(notes('v1.1.1', file).stdout).toBe('- One.\n');
    expect(notes('1.1.10', file).stdout).toBe('- Ten.\n');
  });

  it('leaves out the link definitions after the last section', () => {
    const r = notes('1.0.0', changelog(SAMPLE));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('- First.\n');
  });

  it('fails, naming the version, when the changelog has no section for it', () => {
    const r = notes('1.3.0', changelog(SAMPLE));
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('no section for 1.3.0');
  });

  it('fails on an empty section, a missing file and an argument that is not a version', () => {
    const empty = notes('2.0.0', changelog('## [2.0.0] - 2026-05-01\n\n## [1.0.0]\n\n- x\n'));
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('empty');
    expect(notes('1.0.0', path.join(temp, 'missing.md')).code).toBe(1);
    expect(notes('Unreleased', changelog(SAMPLE)).code).toBe(2);
    expect(notes().code).toBe(2);
  });

  it("has notes for package.json's version in the repository's CHANGELOG.md", () => {
    const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
    const r = notes(version);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().length).toBeGreaterThan(0);
    expect(r.stdout).not.toMatch(/^## /m);
  });
});
