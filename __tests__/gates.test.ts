import { describe, expect, it } from '@jest/globals';
import { judgeContainer } from '../src/engine/gates';

describe('judgeContainer', () => {
  it.each([
    ['running, no healthcheck', { Status: 'running', Running: true }, { ok: true, reason: 'running' }],
    [
      'healthy',
      { Status: 'running', Running: true, Health: { Status: 'healthy' } },
      { ok: true, reason: 'running and healthy' },
    ],
    [
      'unhealthy',
      { Status: 'running', Running: true, Health: { Status: 'unhealthy' } },
      { ok: false, reason: 'unhealthy' },
    ],
    ['starting', { Status: 'running', Running: true, Health: { Status: 'starting' } }, 'starting'],
    ['exited', { Status: 'exited', Running: false }, { ok: false, reason: 'not running (exited)' }],
    ['created', { Status: 'created', Running: false }, { ok: false, reason: 'not running (created)' }],
    [
      'paused',
      { Status: 'paused', Running: true, Paused: true },
      { ok: false, reason: 'not running (paused)' },
    ],
    [
      'restarting',
      { Status: 'restarting', Running: true, Restarting: true },
      { ok: false, reason: 'not running (restarting)' },
    ],
  ])('%s', (_name, State, verdict) => {
    expect(judgeContainer({ State })).toEqual(verdict);
  });
});
