// The pull-request comment as a pure function: marker, headline, disk, biggest items, escaping; and the
// pull request found from the event.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { pullRequestOf } from '../src/github';
import { commentMarker, MARKER_PREFIX, renderComment } from '../src/report/comment';
import type { RunFacts } from '../src/report/facts';
import { imageRows } from '../src/report/rows';
import type { ImageDecision, ImageInfo } from '../src/types';
import { factsOf, planOf } from './support/facts';
import { DAY_MS, imageInfo, withLayers } from './support/objects';

const NOW = Date.parse('2026-06-01T00:00:00Z');
let seq = 0;
function image(tags: string[], size: number): ImageInfo {
  seq++;
  return imageInfo({
    id: `sha256:${seq.toString(16).padStart(64, 'c')}`,
    repoTags: tags,
    createdMs: NOW - DAY_MS,
    // One layer of its own: its unique bytes are its size.
    ...withLayers([[`sha256:layer-${seq}`, size]]),
  });
}

function facts(decisions: ImageDecision[], extra: Partial<RunFacts> = {}): RunFacts {
  return factsOf(planOf(decisions, 7_000_000), NOW, { diskFreeBefore: 1_000_000_000, ...extra });
}

const remove = (img: ImageInfo, detail = 'unused'): ImageDecision => ({
  image: img,
  action: 'remove',
  reason: 'remove',
  detail,
});

describe('commentMarker', () => {
  it('names the workflow and job inside one hidden HTML comment', () => {
    expect(commentMarker('CI', 'test')).toBe('<!-- safe-docker-prune job="CI/test" -->');
  });

  it('cannot be closed or forged by a workflow name', () => {
    const marker = commentMarker('x --> <img src=x> "', 'a"b');
    expect(marker.startsWith(MARKER_PREFIX)).toBe(true);
    expect(marker.match(/-->/g)).toHaveLength(1);
    expect(marker.endsWith(' -->')).toBe(true);
    expect(marker).not.toMatch(/<img|"b/);
  });
});

describe('renderComment', () => {
  const big = image(['web/api:1'], 5_000_000);
  const small = image(['web/api:2'], 1_000);
  const hostile = image(['evil/<script>alert(1)</script>:|x|', 'b/c:*d*'], 3_000_000);
  const dangling = image([], 2_000_000);
  const others = [1, 2, 3].map((n) => image([`other/${n}:1`], 10 * n));
  const decisions = [big, small, hostile, dangling, ...others].map((i) => remove(i));
  const f = facts(decisions);
  const body = renderComment(f, imageRows(f.plan), commentMarker('CI', 'test'));

  it('starts with the marker and the headline of the summary', () => {
    expect(body.split('\n')[0]).toBe('<!-- safe-docker-prune job="CI/test" -->');
    expect(body).toContain('**Would remove 7 image(s), freeing 7.00 MB**');
    expect(body).toContain('Free disk: 1.00 GB before, about 1.01 GB after');
  });

  it('lists the five biggest, biggest first', () => {
    const order = ['web/api:1', 'evil/', 'untagged', 'web/api:2', 'other/3:1'].map((s) => body.indexOf(s));
    expect(order.every((at) => at > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(body).not.toContain('other/1:1');
    expect(body).toContain('(5 of 7)');
  });

  it('escapes hostile names as the job summary does', () => {
    expect(body).not.toContain('<script>');
    expect(body).toContain('&#60;script&#62;alert(1)&#60;/script&#62;:&#124;x&#124;');
    expect(body).toContain('b/c:&#42;d&#42;');
  });

  it('says when the free disk is unknown, and what a prune measured', () => {
    const remote = renderComment(facts(decisions, { diskFreeBefore: undefined }), imageRows(f.plan), 'M');
    expect(remote).toContain('Free disk: unknown');
    const pruned = facts(decisions, { diskFreeAfter: 1_500_000_000 });
    pruned.plan.mode = 'prune';
    const results = decisions.map((d) => ({
      id: d.image.id,
      status: 'removed' as const,
      deleted: [d.image.id],
      untagged: [],
    }));
    pruned.results = results;
    pruned.usageAfter = { layers: 0, containers: 0, volumes: 0, buildCache: 0 };
    const text = renderComment(pruned, imageRows(pruned.plan, results), 'M');
    expect(text).toContain('Free disk: 1.00 GB before, 1.50 GB after');
    expect(text).toContain('Biggest removed');
  });
});

describe('pullRequestOf', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sdp-event-'));
  const event = join(dir, 'event.json');
  writeFileSync(event, JSON.stringify({ number: 7, pull_request: { number: 42 } }));
  const env = { GITHUB_REPOSITORY: 'o/r', GITHUB_EVENT_PATH: event };

  it.each(['pull_request', 'pull_request_target'])('%s: the number from the payload', async (name) => {
    expect(await pullRequestOf({ ...env, GITHUB_EVENT_NAME: name })).toEqual({
      apiUrl: 'https://api.github.com',
      owner: 'o',
      repo: 'r',
      number: 42,
    });
  });

  it('honours GITHUB_API_URL (GitHub Enterprise Server)', async () => {
    const target = await pullRequestOf({
      ...env,
      GITHUB_EVENT_NAME: 'pull_request',
      GITHUB_API_URL: 'https://ghe.example/api/v3/',
    });
    expect(target).toMatchObject({ apiUrl: 'https://ghe.example/api/v3' });
  });

  it.each(['push', 'schedule', 'issue_comment', 'pull_request_review', ''])('%s: none', async (name) => {
    expect(await pullRequestOf({ ...env, GITHUB_EVENT_NAME: name })).toHaveProperty('none');
  });

  it('no payload or no number: none', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ pull_request: {} }));
    expect(
      await pullRequestOf({ ...env, GITHUB_EVENT_NAME: 'pull_request', GITHUB_EVENT_PATH: bad }),
    ).toEqual({
      none: 'the event payload has no pull request number',
    });
    expect(
      await pullRequestOf({
        ...env,
        GITHUB_EVENT_NAME: 'pull_request',
        GITHUB_EVENT_PATH: join(dir, 'missing'),
      }),
    ).toHaveProperty('none');
  });
});
