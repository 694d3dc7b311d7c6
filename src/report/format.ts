// Units and names as people read them: bytes, ages, short image IDs, the engine.

import type { EngineInfo } from '../types';

// Sizes are formatted by the shared ground (src/units.ts) so the policy and the engine say them alike.
export { formatBytes } from '../units';

const STORE_NAMES: Record<EngineInfo['imageStore'], string> = {
  classic: 'classic image store',
  containerd: 'containerd image store',
  podman: 'containers/storage',
};

/** `Docker 28.5.2 (API 1.51, containerd image store)`. */
export function describeEngine(engine: EngineInfo): string {
  return `${engineName(engine)} ${engine.version} (API ${engine.apiVersion}, ${STORE_NAMES[engine.imageStore]})`;
}

/** `Docker` or `Podman`, as people name the engine. */
export function engineName(engine: Pick<EngineInfo, 'name'>): string {
  return engine.name === 'podman' ? 'Podman' : 'Docker';
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** Decimal units, as Docker prints them. */
export function formatAge(createdMs: number, nowMs: number): string {
  const minutes = Math.max(0, Math.floor((nowMs - createdMs) / 60_000));
  if (minutes < 60) return `${minutes}m`;
  if (minutes < 48 * 60) return `${Math.floor(minutes / 60)}h`;
  return `${Math.floor(minutes / 1440)}d`;
}
