// `protect` entries: reference patterns, image IDs and labels, and matching them against images.
import { InputError } from '../errors';
import type { ProtectRule } from '../types';

const USAGE = 'use NAME[:TAG], NAME@sha256:DIGEST, an image ID (12+ hex digits) or label=KEY[=VALUE]';
const DEFAULT_DOMAIN = 'docker.io';
const LOCALHOST = 'localhost/';

// Docker's reference grammar (distribution/reference), widened with `*` for patterns.
const DOMAIN_COMPONENT = '[a-zA-Z0-9*](?:[a-zA-Z0-9*-]*[a-zA-Z0-9*])?';
const DOMAIN = new RegExp(
  `^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9*]+)?$`,
);
const PATH_COMPONENT = /^[a-z0-9*]+(?:(?:[._]|__|-+)[a-z0-9*]+)*$/;
const TAG = /^[\w*][\w.*-]{0,127}$/;
const ID = /^(?:sha256:)?([0-9a-f]{12,64})$/i;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** Splits `name[:tag][@digest]`; the tag follows the last `:` after the last `/`, so a port is never a tag. */
function split(ref: string): { name: string; tag?: string; digest?: string } {
  const at = ref.indexOf('@');
  const digest = at >= 0 ? ref.slice(at + 1) : undefined;
  const rest = at >= 0 ? ref.slice(0, at) : ref;
  const colon = rest.lastIndexOf(':');
  if (colon <= rest.lastIndexOf('/')) return { name: rest, digest };
  return { name: rest.slice(0, colon), tag: rest.slice(colon + 1), digest };
}

/** Docker's rule: the first component is a registry if it has `.` or `:`, is `localhost`, or has upper case. */
function splitDomain(name: string): { domain?: string; path: string } {
  const slash = name.indexOf('/');
  const first = name.slice(0, slash);
  if (slash < 0 || (!/[.:]/.test(first) && first !== 'localhost' && first === first.toLowerCase())) {
    return { path: name };
  }
  return { domain: first, path: name.slice(slash + 1) };
}

/** `postgres` → `docker.io/library/postgres`, `index.docker.io/x/y` → `docker.io/x/y`; other registries unchanged. */
export function normalizeName(name: string): string {
  const { domain = DEFAULT_DOMAIN, path } = splitDomain(name);
  const d = domain === 'index.docker.io' ? DEFAULT_DOMAIN : domain;
  return `${d}/${d === DEFAULT_DOMAIN && !path.includes('/') ? `library/${path}` : path}`;
}

/** Splits a reference as Docker lists it (`localhost:5000/a/b:1.0`) into its normalised name and tag. */
export function splitReference(ref: string): { name: string; tag?: string } {
  const { name, tag } = split(ref);
  return tag === undefined ? { name: normalizeName(name) } : { name: normalizeName(name), tag };
}

/** The normalised repository of a reference, to group the tags of one repository. */
export function repositoryOf(ref: string): string {
  return splitReference(ref).name;
}

function invalid(entry: string, why: string): InputError {
  return new InputError('protect', entry, `is not a valid protect entry (${why}); ${USAGE}`);
}

/** Parses one trimmed, non-empty `protect` entry. */
export function parseProtectEntry(entry: string): ProtectRule {
  if (entry.startsWith('label=')) {
    const kv = entry.slice('label='.length);
    const eq = kv.indexOf('=');
    const key = eq < 0 ? kv : kv.slice(0, eq);
    if (!key) throw invalid(entry, 'empty label key');
    // `label=KEY=` keeps the empty value: the label must be present and empty.
    return eq < 0 ? { kind: 'label', entry, key } : { kind: 'label', entry, key, value: kv.slice(eq + 1) };
  }
  // A 12-64 hex string is taken as an image ID even though it would also be a valid repository
  // name: IDs are what people copy from `docker images`, and such repository names are unlikely.
  const id = ID.exec(entry);
  if (id) return { kind: 'id', entry, prefix: id[1].toLowerCase() };
  if (/^sha256:/i.test(entry)) {
    throw new InputError(
      'protect',
      entry,
      'is not an image ID; use 12 to 64 hex digits, with or without sha256:',
    );
  }
  if (/\s/.test(entry)) throw invalid(entry, 'contains spaces');
  const { name, tag, digest } = split(entry);
  if (digest !== undefined && !DIGEST.test(digest)) {
    throw invalid(entry, 'a digest is sha256: and 64 lower-case hex digits');
  }
  if (digest !== undefined && name.includes('*')) throw invalid(entry, 'a digest reference has no patterns');
  if (tag !== undefined && !TAG.test(tag))
    throw invalid(entry, tag ? `bad tag ${JSON.stringify(tag)}` : 'empty tag');
  if (!name) throw invalid(entry, 'empty name');
  const { domain, path } = splitDomain(name);
  if (domain !== undefined && !DOMAIN.test(domain))
    throw invalid(entry, `bad registry ${JSON.stringify(domain)}`);
  for (const component of path.split('/')) {
    if (PATH_COMPONENT.test(component)) continue;
    throw invalid(
      entry,
      /[A-Z]/.test(component)
        ? 'repository names are lower-case'
        : `bad name component ${JSON.stringify(component)}`,
    );
  }
  // A pattern starting with `**` is left as written so that `**` and `**:v1` match every repository
  // of every registry; anything else is normalised like a real reference (`*` → docker.io/library/*).
  if (digest !== undefined) return { kind: 'reference', entry, name: normalizeName(name), tag, digest };
  return { kind: 'reference', entry, name: name.startsWith('**') ? name : normalizeName(name), tag };
}

/** `**` crosses `/`; `*` stays within one path segment (tags have no `/`, so there it matches anything). */
function globToRegExp(glob: string): RegExp {
  const body = glob
    .split(/(\*\*|\*)/)
    .map((part) =>
      part === '**' ? '.*' : part === '*' ? '[^/]*' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('');
  return new RegExp(`^${body}$`);
}

type Compiled = { name: RegExp; tag?: RegExp };
// Matching runs for every image against every rule: compile each rule's globs once.
const compiled = new WeakMap<ProtectRule, Compiled>();

function compile(rule: ProtectRule & { kind: 'reference' }): Compiled {
  let c = compiled.get(rule);
  if (!c) {
    c = { name: globToRegExp(rule.name), tag: rule.tag === undefined ? undefined : globToRegExp(rule.tag) };
    compiled.set(rule, c);
  }
  return c;
}

export interface MatchableImage {
  id: string;
  repoTags: string[];
  /** `name@sha256:…` references (absent for containers, networks and volumes). */
  repoDigests?: string[];
  labels: Record<string, string>;
}

/** `localhost/NAME` (Podman's name for an image built or loaded without a registry) also as `NAME`. */
function namesOf(name: string): string[] {
  return name.startsWith(LOCALHOST) ? [name, normalizeName(name.slice(LOCALHOST.length))] : [name];
}

/** Splits a `name@sha256:…` reference as Docker lists it into its normalised name and digest. */
export function splitDigestReference(ref: string): { name: string; digest?: string } {
  const { name, digest } = split(ref);
  return { name: normalizeName(name), digest };
}

export function ruleMatches(rule: ProtectRule, image: MatchableImage): boolean {
  switch (rule.kind) {
    case 'id':
      return image.id
        .replace(/^sha256:/, '')
        .toLowerCase()
        .startsWith(rule.prefix);
    case 'label': {
      const labels = image.labels ?? {};
      return Object.hasOwn(labels, rule.key) && (rule.value === undefined || labels[rule.key] === rule.value);
    }
    case 'reference': {
      const digests = (image.repoDigests ?? []).map(splitDigestReference);
      // `NAME@sha256:…`: that repository's manifest, exactly (a tag beside it is ignored, as Docker does).
      if (rule.digest !== undefined) {
        return digests.some((d) => d.digest === rule.digest && namesOf(d.name).includes(rule.name));
      }
      const re = compile(rule);
      // Podman names images built or loaded without a registry `localhost/NAME`; people write NAME.
      // Matching both can only protect more.
      const named = (name: string) => namesOf(name).some((n) => re.name.test(n));
      const tagged = image.repoTags.some((ref) => {
        const { name, tag } = splitReference(ref);
        if (re.tag !== undefined && (tag === undefined || !re.tag.test(tag))) return false;
        return named(name);
      });
      // An entry without a tag protects the repository's images pinned by digest too (`postgres@sha256:…`
      // pulled with no tag has only a RepoDigest).
      return tagged || (re.tag === undefined && digests.some((d) => named(d.name)));
    }
  }
}

/** The first rule that protects the image, if any. */
export function findProtection(rules: ProtectRule[], image: MatchableImage): ProtectRule | undefined {
  return rules.find((rule) => ruleMatches(rule, image));
}

export interface MatchableObject {
  id: string;
  name: string;
  labels: Record<string, string>;
}

const nameGlobs = new Map<string, RegExp>();

/**
 * The rule that protects a container, network or volume, if any: a label entry, an ID prefix, or an
 * entry that is a plain name pattern (no `/`, no tag: `db`, `cache-*`) matched against its name.
 */
export function findObjectProtection(rules: ProtectRule[], object: MatchableObject): ProtectRule | undefined {
  return rules.find((rule) => {
    if (rule.kind !== 'reference')
      return ruleMatches(rule, { id: object.id, repoTags: [], labels: object.labels });
    if (/[/:]/.test(rule.entry)) return false;
    let glob = nameGlobs.get(rule.entry);
    if (!glob) nameGlobs.set(rule.entry, (glob = globToRegExp(rule.entry)));
    return glob.test(object.name);
  });
}

/** A normalised repository as people write it: `docker.io/library/postgres` → `postgres`. */
export function displayRepository(repository: string): string {
  return repository.replace(/^docker\.io\/(library\/)?/, '');
}
