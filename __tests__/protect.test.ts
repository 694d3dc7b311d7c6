import { InputError } from '../src/errors';
import {
  findProtection,
  normalizeName,
  parseProtectEntry,
  repositoryOf,
  ruleMatches,
  splitReference,
} from '../src/policy/protect';

const ID = 'sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef';
const image = (repoTags: string[], labels: Record<string, string> = {}, id = ID) => ({
  id,
  repoTags,
  labels,
});
const protects = (entry: string, ...repoTags: string[]) =>
  ruleMatches(parseProtectEntry(entry), image(repoTags));

describe('normalizeName / splitReference / repositoryOf', () => {
  it.each([
    ['postgres', 'docker.io/library/postgres'],
    ['library/postgres', 'docker.io/library/postgres'],
    ['docker.io/library/postgres', 'docker.io/library/postgres'],
    ['docker.io/postgres', 'docker.io/library/postgres'],
    ['index.docker.io/library/postgres', 'docker.io/library/postgres'],
    ['index.docker.io/team/app', 'docker.io/team/app'],
    ['team/app', 'docker.io/team/app'],
    ['ghcr.io/org/app', 'ghcr.io/org/app'],
    ['localhost/app', 'localhost/app'],
    ['localhost:5000/team/app', 'localhost:5000/team/app'],
    ['registry:5000/app', 'registry:5000/app'],
    ['Registry/app', 'Registry/app'],
  ])('normalizeName(%s) = %s', (name, expected) => expect(normalizeName(name)).toBe(expected));

  it.each([
    ['postgres:16', { name: 'docker.io/library/postgres', tag: '16' }],
    ['postgres', { name: 'docker.io/library/postgres' }],
    ['localhost:5000/a/b:1.0', { name: 'localhost:5000/a/b', tag: '1.0' }],
    ['localhost:5000/a/b', { name: 'localhost:5000/a/b' }],
    ['[::1]:5000/app:v2', { name: '[::1]:5000/app', tag: 'v2' }],
    ['ghcr.io/org/app@sha256:abc', { name: 'ghcr.io/org/app' }],
  ])('splitReference(%s)', (ref, expected) => expect(splitReference(ref)).toEqual(expected));

  it('groups tags by repository', () => {
    expect(repositoryOf('postgres:16')).toBe(repositoryOf('docker.io/library/postgres:15'));
    expect(repositoryOf('localhost:5000/team/app:2.1')).toBe('localhost:5000/team/app');
  });
});

describe('parseProtectEntry', () => {
  it.each([
    ['postgres:16', { name: 'docker.io/library/postgres', tag: '16' }],
    ['postgres', { name: 'docker.io/library/postgres', tag: undefined }],
    ['web/api:v1', { name: 'docker.io/web/api', tag: 'v1' }],
    ['localhost:5000/team/app:2.*', { name: 'localhost:5000/team/app', tag: '2.*' }],
    ['localhost:5000/team/app', { name: 'localhost:5000/team/app', tag: undefined }],
    ['*/app', { name: 'docker.io/*/app', tag: undefined }],
    ['*', { name: 'docker.io/library/*', tag: undefined }],
    ['**', { name: '**', tag: undefined }],
    ['**:v1', { name: '**', tag: 'v1' }],
    ['**/app', { name: '**/app', tag: undefined }],
    ['ghcr.io/org/**', { name: 'ghcr.io/org/**', tag: undefined }],
    ['*.example.com/app:*', { name: '*.example.com/app', tag: '*' }],
    ['my_team/app-name__x.y:V1_2-rc.3', { name: 'docker.io/my_team/app-name__x.y', tag: 'V1_2-rc.3' }],
  ])('reference %s', (entry, expected) =>
    expect(parseProtectEntry(entry)).toEqual({ kind: 'reference', entry, ...expected }),
  );

  it.each([
    ['0123456789ab', '0123456789ab'],
    ['sha256:0123456789AB', '0123456789ab'],
    ['SHA256:0123456789abcdef', '0123456789abcdef'],
    ['DEADBEEFCAFE', 'deadbeefcafe'],
    [ID, ID.slice(7)],
  ])('image ID %s', (entry, prefix) =>
    expect(parseProtectEntry(entry)).toEqual({ kind: 'id', entry, prefix }),
  );

  it('takes short hex strings and 65+ hex digits as repository names', () => {
    expect(parseProtectEntry('abcdef')).toMatchObject({
      kind: 'reference',
      name: 'docker.io/library/abcdef',
    });
    expect(parseProtectEntry('a'.repeat(65))).toMatchObject({ kind: 'reference' });
  });

  it.each([
    ['label=keep', { key: 'keep' }],
    ['label=keep=true', { key: 'keep', value: 'true' }],
    ['label=keep=', { key: 'keep', value: '' }],
    ['label=expr=a=b', { key: 'expr', value: 'a=b' }],
    ['label=com.example.role=db server', { key: 'com.example.role', value: 'db server' }],
  ])('label %s', (entry, expected) =>
    expect(parseProtectEntry(entry)).toEqual({ kind: 'label', entry, ...expected }),
  );

  it.each([
    ['label=', /empty label key/],
    ['label==x', /empty label key/],
    ['sha256:abc', /is not an image ID/],
    ['sha256:', /is not an image ID/],
    ['sha256:0123456789xyz', /is not an image ID/],
    ['sha256:' + 'a'.repeat(65), /is not an image ID/],
    ['postgres@sha256:' + 'a'.repeat(63), /a digest is sha256: and 64 lower-case hex digits/],
    ['postgres@sha256:' + 'A'.repeat(64), /a digest is sha256: and 64 lower-case hex digits/],
    ['postgres@md5:' + 'a'.repeat(32), /a digest is sha256:/],
    ['team/*@sha256:' + 'a'.repeat(64), /a digest reference has no patterns/],
    ['app:', /empty tag/],
    [':v1', /empty name/],
    ['my app', /contains spaces/],
    ['Postgres', /lower-case/],
    ['team/App:v1', /lower-case/],
    ['web//api', /bad name component ""/],
    ['-app', /bad name component/],
    ['app-', /bad name component/],
    ['team/app/', /bad name component/],
    ['app:-v1', /bad tag/],
    ['app:v1/x', /bad registry "app:v1"/],
    ['app:' + 'a'.repeat(129), /bad tag/],
    ['bad_host.io:port/app', /bad registry/],
    ['app!', /bad name component/],
  ])('rejects %s', (entry, why) => {
    let error: unknown;
    try {
      parseProtectEntry(entry);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputError);
    expect(error).toMatchObject({ input: 'protect', value: entry });
    expect((error as Error).message).toContain(`protect: ${JSON.stringify(entry)} `);
    expect((error as Error).message).toMatch(why);
  });

  it('says what is accepted', () => {
    expect(() => parseProtectEntry('a b')).toThrow(
      'protect: "a b" is not a valid protect entry (contains spaces); ' +
        'use NAME[:TAG], NAME@sha256:DIGEST, an image ID (12+ hex digits) or label=KEY[=VALUE]',
    );
  });
});

describe('ruleMatches for references', () => {
  it.each<[string, string[], boolean]>([
    // the whole reference must match, never a substring
    ['web/api:v1', ['web/api:v1'], true],
    ['web/api:v1', ['web/api:v10'], false],
    ['web/api:v1', ['web/api:v1-rc'], false],
    ['web/api:v1', ['xweb/api:v1', 'web/apix:v1', 'web/api/x:v1'], false],
    ['postgres:16', ['postgres:16'], true],
    ['postgres:16', ['postgres:16-alpine'], false],
    ['postgres:16', ['docker.io/library/postgres:16'], true],
    ['library/postgres:16', ['postgres:16'], true],
    ['docker.io/library/postgres:16', ['postgres:16'], true],
    ['index.docker.io/library/postgres:16', ['postgres:16'], true],
    ['postgres:16', ['ghcr.io/library/postgres:16'], false],
    ['postgres:16', ['me/postgres:16'], false],
    // no tag: every tag of that repository
    ['postgres', ['postgres:15', 'x:1'], true],
    ['postgres', ['postgres-exporter:1'], false],
    // registry with a port
    ['localhost:5000/team/app:2.*', ['localhost:5000/team/app:2.1'], true],
    ['localhost:5000/team/app:2.*', ['localhost:5000/team/app:2.'], true],
    ['localhost:5000/team/app:2.*', ['localhost:5000/team/app:3.1'], false],
    ['localhost:5000/team/app:2.*', ['localhost:5001/team/app:2.1'], false],
    ['localhost:5000/team/app:2.*', ['team/app:2.1'], false],
    ['localhost:5000/team/app', ['localhost:5000/team/app:latest'], true],
    // Podman lists local images as localhost/NAME: NAME and localhost/NAME both match them
    ['team/app:2', ['localhost/team/app:2'], true],
    ['postgres:16', ['localhost/postgres:16'], true],
    ['localhost/team/app:2', ['localhost/team/app:2'], true],
    ['team/app:2', ['localhost/team/app:3'], false],
    ['team/app:2', ['localhost:5000/team/app:2'], false],
    ['localhost/team/app:2', ['team/app:2'], false],
    // `.` in a pattern is literal
    ['app:1.0', ['app:1x0'], false],
    // `*` within one segment, `**` across
    ['*/app', ['team/app:1', 'docker.io/other/app:2'], true],
    ['*/app', ['app:1'], true], // app is docker.io/library/app
    ['*/app', ['a/b/app:1'], false],
    ['*/app', ['ghcr.io/team/app:1'], false],
    ['team/*', ['team/app:1'], true],
    ['team/*', ['team/app/sub:1'], false],
    ['team/**', ['team/app/sub:1'], true],
    ['ghcr.io/org/*-api', ['ghcr.io/org/web-api:1'], true],
    ['ghcr.io/org/*-api', ['ghcr.io/org/web-api-v2:1'], false],
    ['*', ['postgres:16'], true],
    ['*', ['team/app:1'], false],
    ['**', ['postgres:16', 'x:1'], true],
    ['**', ['ghcr.io/org/deep/app:1'], true],
    ['**:v1', ['ghcr.io/org/app:v1'], true],
    ['**:v1', ['localhost:5000/app:v1'], true],
    ['**:v1', ['localhost:5000/app:v10'], false],
    ['**/app', ['ghcr.io/org/app:1', 'app:2'], true],
    ['**/app', ['ghcr.io/org/webapp:1'], false],
    ['*.example.com/app', ['registry.example.com/app:1'], true],
    ['*.example.com/app', ['example.com/app:1'], false],
    // tag globs
    ['app:*', ['app:anything.at-all'], true],
    ['app:v*', ['app:v1.2.3'], true],
    ['app:v*', ['app:1'], false],
    ['app:*-prod', ['app:2024-01-prod'], true],
    ['app:*-prod', ['app:2024-01-prod-old'], false],
    // no tags at all (dangling)
    ['**', [], false],
  ])('%s vs %j → %s', (entry, repoTags, expected) => expect(protects(entry, ...repoTags)).toBe(expected));

  it('reuses the compiled pattern', () => {
    const rule = parseProtectEntry('team/*:v*');
    for (let i = 0; i < 3; i++) expect(ruleMatches(rule, image(['team/app:v1']))).toBe(true);
    expect(ruleMatches(rule, image(['team/app:1']))).toBe(false);
  });
});

describe('ruleMatches for IDs and labels', () => {
  it.each<[string, boolean]>([
    ['0123456789ab', true],
    ['sha256:0123456789AB', true],
    [ID, true],
    ['123456789abc', false],
    ['0123456789ac', false],
  ])('%s → %s', (entry, expected) => expect(ruleMatches(parseProtectEntry(entry), image([]))).toBe(expected));

  it('matches IDs without the sha256: prefix too', () => {
    expect(ruleMatches(parseProtectEntry('0123456789ab'), image([], {}, ID.slice(7)))).toBe(true);
  });

  const labels = { keep: 'true', empty: '', 'com.example.expr': 'a=b' };
  it.each<[string, boolean]>([
    ['label=keep', true],
    ['label=keep=true', true],
    ['label=keep=false', false],
    ['label=keep=', false],
    ['label=empty', true],
    ['label=empty=', true],
    ['label=com.example.expr=a=b', true],
    ['label=missing', false],
    ['label=toString', false],
  ])('%s → %s', (entry, expected) =>
    expect(ruleMatches(parseProtectEntry(entry), image([], labels))).toBe(expected),
  );
});

describe('findProtection', () => {
  const rules = ['label=keep', 'postgres', '0123456789ab'].map(parseProtectEntry);
  it('returns the first matching rule', () => {
    expect(findProtection(rules, image(['postgres:16']))?.entry).toBe('postgres');
    expect(findProtection(rules, image(['postgres:16'], { keep: '' }))?.entry).toBe('label=keep');
    expect(findProtection(rules, image(['redis:7']))?.entry).toBe('0123456789ab');
    expect(findProtection(rules, image(['redis:7'], {}, 'sha256:' + 'f'.repeat(64)))).toBeUndefined();
    expect(findProtection([], image(['postgres:16']))).toBeUndefined();
  });
});

describe('images pinned by digest', () => {
  const A = `sha256:${'a'.repeat(64)}`;
  const B = `sha256:${'b'.repeat(64)}`;
  /** An image pulled as NAME@DIGEST only: no tags, only RepoDigests. */
  const pinned = (...repoDigests: string[]) => ({ id: ID, repoTags: [], repoDigests, labels: {} });
  it.each<[string, string[], boolean]>([
    // a name entry without a tag protects the repository's digest-pinned images
    ['postgres', [`postgres@${A}`], true],
    ['postgres', [`docker.io/library/postgres@${A}`], true],
    ['team/*', [`team/app@${A}`], true],
    ['team/app', [`localhost/team/app@${A}`], true],
    ['postgres', [`postgres-exporter@${A}`], false],
    ['redis', [`postgres@${A}`], false],
    // a tag entry names tags: a digest-pinned image has none
    ['postgres:16', [`postgres@${A}`], false],
    ['postgres:*', [`postgres@${A}`], false],
    // NAME@DIGEST: that repository's manifest exactly
    [`postgres@${A}`, [`postgres@${A}`], true],
    [`postgres@${A}`, [`docker.io/library/postgres@${A}`], true],
    [`postgres:16@${A}`, [`postgres@${A}`], true],
    [`postgres@${A}`, [`postgres@${B}`], false],
    [`postgres@${A}`, [`mysql@${A}`], false],
    [`ghcr.io/org/app@${A}`, [`ghcr.io/org/app@${A}`, `postgres@${B}`], true],
    [`team/app@${A}`, [`localhost/team/app@${A}`], true],
  ])('%s protects %j: %s', (entry, repoDigests, expected) =>
    expect(ruleMatches(parseProtectEntry(entry), pinned(...repoDigests))).toBe(expected),
  );

  it('a digest entry does not match tags, and is parsed with its digest', () => {
    expect(ruleMatches(parseProtectEntry(`postgres@${A}`), image(['postgres:16']))).toBe(false);
    expect(parseProtectEntry(`postgres:16@${A}`)).toEqual({
      kind: 'reference',
      entry: `postgres:16@${A}`,
      name: 'docker.io/library/postgres',
      tag: '16',
      digest: A,
    });
  });
});
