// The sticky pull-request comment, end to end: the bundled action against a private daemon and a small
// local stand-in for GitHub's REST API (the few endpoints the action uses; no GitHub is reachable here).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from '@jest/globals';
import { runAction, type ActionRun } from './support/action';
import { describeDocker, startDaemon, type PrivateDaemon } from './support/daemon';
import { busyboxLayer, clearDaemon, loadImages } from './support/fleet';

const TOKEN = 'ghs_sdpTestToken0123456789abcdefXYZ';
const NOW = Date.now();
const DAY = 86_400_000;
/** The path prefix of GitHub Enterprise Server's API, to show GITHUB_API_URL is followed as given. */
const PREFIX = '/api/v3';

interface Comment {
  id: number;
  body: string;
  user: { login: string; type: string };
}

/** GitHub's issue-comment endpoints, in memory, with pages of 2 comments to make the action paginate. */
class FakeGitHub {
  comments: Comment[] = [];
  requests: string[] = [];
  /** The account GET /user names; undefined answers 403 as it does for installation tokens. */
  viewer: { login: string; type: string } | undefined = { login: 'sdp-user', type: 'User' };
  /** Account that writes with the token when GET /user may not be read. */
  installationAccount = { login: 'github-actions[bot]', type: 'Bot' };
  /** Writes answer 403, as for a read-only token. */
  readOnly = false;
  private nextId = 1000;
  private server: Server = createServer((req, res) => void this.handle(req, res));
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${PREFIX}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  add(body: string, user: { login: string; type: string }): Comment {
    const comment = { id: this.nextId++, body, user };
    this.comments.push(comment);
    return comment;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const url = new URL(req.url ?? '/', 'http://localhost');
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    const send = (status: number, data: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(data));
    };
    if (req.headers.authorization?.replace(/^(token|bearer) /i, '') !== TOKEN) {
      return send(401, { message: 'Bad credentials' });
    }
    if (!url.pathname.startsWith(PREFIX)) return send(404, { message: 'Not Found' });
    const path = url.pathname.slice(PREFIX.length);
    const author = this.viewer ?? this.installationAccount;
    const forbidden = { message: 'Resource not accessible by integration' };

    if (req.method === 'GET' && path === '/user') {
      return this.viewer ? send(200, this.viewer) : send(403, forbidden);
    }
    if (path === '/repos/acme/app/issues/42/comments') {
      if (req.method === 'GET') {
        const perPage = Math.min(2, Number(url.searchParams.get('per_page') ?? 30));
        const page = Number(url.searchParams.get('page') ?? 1);
        const last = Math.max(1, Math.ceil(this.comments.length / perPage));
        const link =
          page < last
            ? { link: `<${this.url}${path}?per_page=${perPage}&page=${page + 1}>; rel="next"` }
            : undefined;
        return send(200, this.comments.slice((page - 1) * perPage, page * perPage), link);
      }
      if (req.method === 'POST') {
        if (this.readOnly) return send(403, forbidden);
        const comment = this.add(JSON.parse(raw).body, author);
        return send(201, { ...comment, html_url: `https://github.example/acme/app/pull/42#c${comment.id}` });
      }
    }
    const edit = /^\/repos\/acme\/app\/issues\/comments\/(\d+)$/.exec(path);
    if (edit && req.method === 'PATCH') {
      if (this.readOnly) return send(403, forbidden);
      const comment = this.comments.find((c) => c.id === Number(edit[1]));
      if (!comment) return send(404, { message: 'Not Found' });
      if (comment.user.login !== author.login) return send(403, { message: 'not your comment' });
      comment.body = JSON.parse(raw).body;
      return send(200, comment);
    }
    return send(404, { message: `no route ${req.method} ${path}` });
  }
}

let daemon: PrivateDaemon;
let github: FakeGitHub;
let eventDir: string;

describeDocker('the pull-request comment', () => {
  beforeAll(async () => {
    daemon = (await startDaemon('comment'))!;
    await clearDaemon(daemon.docker);
    // Tagged images on one base, as the other tests load them on every engine.
    await loadImages(daemon.docker, [
      {
        tags: ['old/app:1'],
        layers: [busyboxLayer(), { key: 'old-1', bytes: 300_000 }],
        created: new Date(NOW - 3 * DAY),
      },
      {
        tags: ['old/app:2'],
        layers: [busyboxLayer(), { key: 'old-2', bytes: 100_000 }],
        created: new Date(NOW - 5 * DAY),
      },
      {
        tags: ['app/web:1'],
        layers: [busyboxLayer(), { key: 'web-1', bytes: 50_000 }],
        created: new Date(NOW - DAY),
      },
      {
        tags: ['d8e1f2:' + '9'.repeat(32)],
        layers: [busyboxLayer(), { key: 'runner', bytes: 10_000 }],
        created: new Date(NOW - DAY),
      },
    ]);
    eventDir = await mkdtemp(join(tmpdir(), 'sdp-event-'));
    await writeFile(join(eventDir, 'pr.json'), JSON.stringify({ number: 42, pull_request: { number: 42 } }));
    await writeFile(join(eventDir, 'push.json'), JSON.stringify({ ref: 'refs/heads/main' }));
  }, 120_000);
  afterAll(async () => {
    await daemon?.stop();
    if (eventDir) await rm(eventDir, { recursive: true, force: true });
  }, 60_000);
  beforeEach(async () => {
    github = new FakeGitHub();
    await github.start();
  });
  afterEach(() => github.stop());

  const run = (event = 'pull_request', inputs: Record<string, string> = {}): Promise<ActionRun> =>
    runAction({
      host: daemon.host,
      inputs: {
        mode: 'report',
        images: 'unused',
        'keep-recent': '0',
        protect: 'app/web',
        'pr-comment': 'true',
        'github-token': TOKEN,
        ...inputs,
      },
      env: {
        GITHUB_EVENT_NAME: event,
        GITHUB_EVENT_PATH: join(eventDir, event.startsWith('pull_request') ? 'pr.json' : 'push.json'),
        GITHUB_REPOSITORY: 'acme/app',
        GITHUB_API_URL: github.url,
        GITHUB_WORKFLOW: 'CI',
        GITHUB_JOB: 'prune-report',
      },
    });

  /** The token appears nowhere but in the mask command that tells the runner to hide it. */
  const expectTokenHidden = (result: ActionRun) => {
    const lines = `${result.stdout}\n${result.stderr}`.split('\n');
    expect(lines.filter((l) => l.includes(TOKEN))).toEqual([`::add-mask::${TOKEN}`]);
    expect(result.summary).not.toContain(TOKEN);
    expect(JSON.stringify(result.report)).not.toContain(TOKEN);
  };
  const marker = '<!-- safe-docker-prune job="CI/prune-report" -->';

  it('creates one comment, then edits the same one; never a second', async () => {
    // Three comments before ours, so that finding it takes a second page.
    github.add('LGTM', { login: 'alice', type: 'User' });
    github.add('ci is green', { login: 'bob', type: 'User' });
    github.add('one more', { login: 'alice', type: 'User' });
    const first = await run();
    expect(first.code).toBe(0);
    expectTokenHidden(first);
    const ours = github.comments.filter((c) => c.body.includes(marker));
    expect(ours).toHaveLength(1);
    expect(ours[0].user.login).toBe('sdp-user');
    expect(ours[0].body.startsWith(marker)).toBe(true);
    // The layer bytes are exact on the classic store; other stores add blobs or metadata.
    expect(ours[0].body).toContain(
      daemon.imageStore === 'classic'
        ? '**Would remove 3 image(s), freeing 410.0 kB**'
        : '**Would remove 3 image(s), freeing',
    );
    expect(ours[0].body).toContain('runner-built action images: 1, ');
    expect(first.stdout).toMatch(/pr-comment: created comment 1003 on pull request #42/);

    const second = await run('pull_request_target');
    expect(second.code).toBe(0);
    expectTokenHidden(second);
    expect(github.comments).toHaveLength(4);
    expect(github.comments.filter((c) => c.body.includes(marker)).map((c) => c.id)).toEqual([ours[0].id]);
    expect(second.stdout).toMatch(/pr-comment: updated comment 1003 on pull request #42/);
    // Listing went through both pages each time.
    expect(github.requests.filter((r) => r.includes('page=2'))).toHaveLength(2);
    expect(github.requests.filter((r) => r.startsWith('PATCH'))).toHaveLength(1);
  }, 120_000);

  it("never touches someone else's comment that quotes the marker", async () => {
    const foreign = github.add(`${marker}\nI copied your comment`, { login: 'mallory', type: 'User' });
    const result = await run();
    expect(result.code).toBe(0);
    expect(github.comments.find((c) => c.id === foreign.id)?.body).toBe(`${marker}\nI copied your comment`);
    expect(github.comments.filter((c) => c.user.login === 'sdp-user')).toHaveLength(1);
    expect(github.requests.filter((r) => r.startsWith('PATCH'))).toEqual([]);
  }, 120_000);

  it('with an installation token (GET /user refused) its comments are the bot account’s', async () => {
    github.viewer = undefined;
    const foreign = github.add(`${marker}\nquoted`, { login: 'mallory', type: 'User' });
    await run();
    await run();
    const ours = github.comments.filter((c) => c.user.login === 'github-actions[bot]');
    expect(ours).toHaveLength(1);
    expect(github.comments).toHaveLength(2);
    expect(github.comments.find((c) => c.id === foreign.id)?.body).toBe(`${marker}\nquoted`);
  }, 120_000);

  it('a read-only token (403) is a warning that says to grant pull-requests: write; the step succeeds', async () => {
    github.readOnly = true;
    const result = await run();
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/::warning::pr-comment: GitHub refused the pull-request comment, HTTP 403/);
    expect(result.stdout).toContain('pull-requests: write');
    expect(result.stdout).not.toMatch(/::error::/);
    expect(result.outputs['removed-count']).toBe('3');
    expectTokenHidden(result);
  }, 120_000);

  it('push events make no call; pr-comment false makes no call', async () => {
    const push = await run('push');
    expect(push.code).toBe(0);
    expect(push.stdout).toContain('pr-comment: no comment, not a pull request event (push)');
    const off = await run('pull_request', { 'pr-comment': 'false' });
    expect(off.code).toBe(0);
    expect(github.requests).toEqual([]);
    expectTokenHidden(push);
  }, 120_000);
});
