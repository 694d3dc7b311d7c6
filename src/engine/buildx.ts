// Builder containers of docker buildx's docker-container driver: which builders this host's buildx still
// knows (its CLI through @actions/exec, where it is installed), which one is the current job's, and
// whether a build is running in each container (its processes, from the daemon).

import { type DockerApi } from './docker';
import type { BuilderInfo, ContainerInfo } from '../types';
import { messageOf } from '../errors';

/** buildx names the container of a builder's first (only) node `buildx_buildkit_<builder>0`. */
const BUILDER_CONTAINER = /^buildx_buildkit_(.+)0$/;

export function builderOf(containerName: string): string | undefined {
  return BUILDER_CONTAINER.exec(containerName)?.[1];
}

export interface BuildxBuilder {
  name: string;
  current: boolean;
  driver: string;
  lastActivityMs?: number;
}

/**
 * `docker buildx ls` output: JSON lines (`--format json`, buildx 0.13 and later) or the table of older
 * versions, where builders start a line (`name*` or `name *` for the current one) and nodes are indented.
 */
export function parseBuildxLs(stdout: string): BuildxBuilder[] {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  if (lines.every((l) => l.trim().startsWith('{'))) {
    return lines.map((line) => {
      const b = JSON.parse(line) as {
        Name: string;
        Current?: boolean;
        Driver?: string;
        LastActivity?: string;
      };
      const at = b.LastActivity ? Date.parse(b.LastActivity) : NaN;
      return {
        name: b.Name,
        current: !!b.Current,
        driver: b.Driver ?? '',
        // buildx writes the zero time (year 1) for builders it never used.
        ...(at > 0 ? { lastActivityMs: at } : {}),
      };
    });
  }
  return lines
    .slice(1)
    .filter((l) => /^\S/.test(l))
    .map((line) => {
      const [first, second, third] = line.trim().split(/\s+/);
      const current = first.endsWith('*') || second === '*';
      return { name: first.replace(/\*$/, ''), current, driver: (second === '*' ? third : second) ?? '' };
    });
}

export interface BuildxListing {
  builders: BuildxBuilder[];
  /** Why buildx could not tell, when it could not. */
  unavailable?: string;
}

/** The builders this host's buildx knows, asked of the docker CLI with the daemon's host. */
export async function listBuildxBuilders(
  host: string,
  env: Record<string, string | undefined>,
  timeoutMs: number,
): Promise<BuildxListing> {
  const { getExecOutput } = await import('@actions/exec');
  const childEnv = Object.fromEntries(
    Object.entries({ ...env, DOCKER_HOST: host }).filter((e): e is [string, string] => e[1] !== undefined),
  );
  const run = (args: string[]) =>
    getExecOutput('docker', ['buildx', 'ls', ...args], {
      env: childEnv,
      silent: true,
      ignoreReturnCode: true,
    });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    let out = await Promise.race([run(['--format', 'json']), timeout]);
    // buildx before 0.13 has no --format.
    if (out.exitCode !== 0 && /unknown flag/.test(out.stderr)) out = await Promise.race([run([]), timeout]);
    if (out.exitCode !== 0) {
      return { builders: [], unavailable: `docker buildx ls exited ${out.exitCode}: ${out.stderr.trim()}` };
    }
    return { builders: parseBuildxLs(out.stdout) };
  } catch (error) {
    return { builders: [], unavailable: `docker buildx ls: ${messageOf(error)}` };
  } finally {
    clearTimeout(timer);
  }
}

interface Top {
  Titles?: string[];
  Processes?: string[][];
}

/** Inits that may run first in a container (`--init`); they are not work. */
const INITS = /(^|\/)(docker-init|tini|catatonit|dumb-init)(\s|$)/;

/**
 * What is known of each builder container: its builder, whether buildx knows it, whether it is the
 * current job's (`BUILDX_BUILDER` or buildx's current builder), and how many processes run in it.
 */
export async function inspectBuilders(
  docker: DockerApi,
  containers: ContainerInfo[],
  listing: BuildxListing,
  currentFromEnv: string | undefined,
): Promise<BuilderInfo[]> {
  const known = new Map(listing.builders.map((b) => [b.name, b]));
  const out: BuilderInfo[] = [];
  for (const c of containers) {
    const name = c.names.find((n) => builderOf(n) !== undefined);
    if (!name) continue;
    const builder = builderOf(name)!;
    const entry = known.get(builder);
    let processes: number | undefined = 0;
    if (['running', 'paused', 'restarting'].includes(c.state)) {
      try {
        const top = await docker.request<Top>('GET', `/containers/${encodeURIComponent(c.id)}/top`);
        const cmd = Math.max(
          0,
          (top.Titles ?? []).findIndex((t) => /^(CMD|COMMAND)$/.test(t)),
        );
        processes = (top.Processes ?? []).filter((p) => !INITS.test(p[cmd] ?? '')).length;
      } catch {
        processes = undefined; // unknown: treated as busy
      }
    }
    out.push({
      containerId: c.id,
      name,
      builder,
      processes,
      known: listing.unavailable ? undefined : !!entry,
      ...(entry?.lastActivityMs ? { lastActivityMs: entry.lastActivityMs } : {}),
      current: builder === currentFromEnv || !!entry?.current,
    });
  }
  return out;
}
