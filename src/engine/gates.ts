// Safety gates: containers that must be running, and healthy when they have a healthcheck, before
// anything is planned and again after a prune.

import { statusOf, type DockerApi } from './docker';
import type { GateResult } from '../types';
import { messageOf } from '../errors';

interface ContainerInspect {
  Name?: string;
  State?: {
    Status?: string;
    Running?: boolean;
    Paused?: boolean;
    Restarting?: boolean;
    Health?: { Status?: string };
  };
}

/** Pure: a container's gate verdict from its inspect data; `starting` means "ask again later". */
export function judgeContainer(inspect: ContainerInspect): { ok: boolean; reason: string } | 'starting' {
  const state = inspect.State ?? {};
  const status = state.Status ?? 'unknown';
  if (status !== 'running' || !state.Running || state.Paused || state.Restarting) {
    return { ok: false, reason: `not running (${status})` };
  }
  const health = state.Health?.Status;
  if (health === undefined || health === '' || health === 'none') return { ok: true, reason: 'running' };
  if (health === 'healthy') return { ok: true, reason: 'running and healthy' };
  if (health === 'starting') return 'starting';
  return { ok: false, reason: health };
}

export async function checkGates(
  docker: DockerApi,
  containers: string[],
  timeoutMs: number,
  log: (line: string) => void,
): Promise<GateResult[]> {
  const deadline = Date.now() + timeoutMs;
  return Promise.all(
    containers.map(async (container): Promise<GateResult> => {
      for (let waited = false; ; waited = true) {
        let inspect: ContainerInspect;
        try {
          inspect = await docker.request<ContainerInspect>(
            'GET',
            `/containers/${encodeURIComponent(container)}/json`,
          );
        } catch (error) {
          const reason =
            statusOf(error) === 404 ? 'not found' : `could not be inspected: ${messageOf(error)}`;
          return { container, ok: false, reason };
        }
        const verdict = judgeContainer(inspect);
        if (verdict !== 'starting') return { container, ...verdict };
        if (Date.now() >= deadline) {
          return {
            container,
            ok: false,
            reason: `health still starting after ${Math.round(timeoutMs / 1000)} s`,
          };
        }
        if (!waited)
          log(`waiting for ${container} to become healthy (up to ${Math.round(timeoutMs / 1000)} s)`);
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(1000, Math.max(0, deadline - Date.now()))),
        );
      }
    }),
  );
}
