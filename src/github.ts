// The pull-request comment on GitHub: the only code that talks to GitHub's API, through @actions/github
// (loaded when a comment is actually posted: octokit is a large part of the bundle's start time).
// Called by the action's front door only. Never throws: a comment is information, not the job.

import { readFile } from 'node:fs/promises';
import { messageOf } from './errors';

/** The pull request a run belongs to, from the runner's environment and event payload. */
export interface PullRequestTarget {
  apiUrl: string;
  owner: string;
  repo: string;
  number: number;
}

const PR_EVENTS = ['pull_request', 'pull_request_target'];

/**
 * The pull request of this event, or why there is none. Only `pull_request` and `pull_request_target`
 * events have one; the number comes from the event payload (GITHUB_EVENT_PATH).
 */
export async function pullRequestOf(
  env: Record<string, string | undefined>,
): Promise<PullRequestTarget | { none: string }> {
  const event = env.GITHUB_EVENT_NAME ?? '';
  if (!PR_EVENTS.includes(event)) return { none: `not a pull request event (${event || 'no event'})` };
  const [owner, repo] = (env.GITHUB_REPOSITORY ?? '').split('/');
  if (!owner || !repo) return { none: 'GITHUB_REPOSITORY is not set' };
  let payload: { pull_request?: { number?: unknown }; number?: unknown };
  try {
    payload = JSON.parse(await readFile(env.GITHUB_EVENT_PATH ?? '', 'utf8'));
  } catch (error) {
    return { none: `the event payload (GITHUB_EVENT_PATH) could not be read: ${messageOf(error)}` };
  }
  const number = payload.pull_request?.number ?? payload.number;
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || number <= 0) {
    return { none: 'the event payload has no pull request number' };
  }
  return {
    apiUrl: (env.GITHUB_API_URL || 'https://api.github.com').replace(/\/+$/, ''),
    owner,
    repo,
    number,
  };
}

interface Comment {
  id: number;
  body?: string | null;
  user?: { login: string; type?: string } | null;
}

/** The few octokit calls used here, typed locally (the package is ESM-only and loaded on demand). */
interface Octokit {
  request(route: string, params?: Record<string, unknown>): Promise<{ data: unknown }>;
  paginate(route: string, params: Record<string, unknown>): Promise<unknown[]>;
}

export type CommentResult =
  | { status: 'created' | 'updated'; id: number; url?: string }
  | { status: 'forbidden' | 'failed'; message: string };

/**
 * Creates the comment that carries `marker`, or edits the one this token's account wrote before. A comment
 * is ours when its body has the marker and its author is the token's account: the login of `GET /user`
 * where the token may read it (a personal token), else, for installation tokens (GITHUB_TOKEN, GitHub Apps)
 * that may not, a bot account (`github-actions[bot]`, `APP[bot]`). Other people's comments are never
 * edited, even when they quote the marker.
 */
export async function upsertComment(
  target: PullRequestTarget,
  token: string,
  marker: string,
  body: string,
): Promise<CommentResult> {
  try {
    const { getOctokit } = await import('@actions/github');
    const octokit = getOctokit(token, { baseUrl: target.apiUrl }) as unknown as Octokit;
    const login = await octokit.request('GET /user').then(
      (r) => (r.data as { login?: string }).login,
      () => undefined,
    );
    const mine = (c: Comment) =>
      login !== undefined
        ? c.user?.login === login
        : c.user?.type === 'Bot' && (c.user.login ?? '').endsWith('[bot]');
    const params = { owner: target.owner, repo: target.repo };
    const comments = (await octokit.paginate('GET /repos/{owner}/{repo}/issues/{issue_number}/comments', {
      ...params,
      issue_number: target.number,
      per_page: 100,
    })) as Comment[];
    const existing = comments.find((c) => (c.body ?? '').includes(marker) && mine(c));
    if (existing) {
      const { data } = await octokit.request('PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}', {
        ...params,
        comment_id: existing.id,
        body,
      });
      return { status: 'updated', id: existing.id, url: (data as { html_url?: string }).html_url };
    }
    const { data } = await octokit.request('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', {
      ...params,
      issue_number: target.number,
      body,
    });
    const created = data as { id: number; html_url?: string };
    return { status: 'created', id: created.id, url: created.html_url };
  } catch (error) {
    const status = (error as { status?: number }).status;
    // Octokit's errors carry the request with the authorization header redacted; only the status and
    // GitHub's message are passed on.
    const why =
      (error as { response?: { data?: { message?: string } } }).response?.data?.message ?? messageOf(error);
    if (status === 403) return { status: 'forbidden', message: `HTTP 403 (${why})` };
    return { status: 'failed', message: status ? `HTTP ${status} (${why})` : why };
  }
}
