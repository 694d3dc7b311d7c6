// Removal races on a shared host, against a small fake daemon that answers image deletes as moby's
// classic store does: a tag moved to a new image between the check and the delete, and a planned image
// that gains a container after the inventory. The real daemons' side is races.itg.test.ts.
import { describe, expect, it } from '@jest/globals';
import { Stopper, applyPlan, splitTag, unplannedIn, expectedOf } from '../src/engine/apply';
import type { DockerApi } from '../src/engine/docker';
import type { ImageInfo, Plan, RemovalResult } from '../src/types';

const HOST = 'unix:///tmp/test/docker.sock';
const id = (n: number) => `sha256:${String(n).padStart(64, '0')}`;
/** A layer's chain ID, as the classic store lists it after the image it deleted. */
const layer = (image: string) => `sha256:${'f'.repeat(8)}${image.slice(15)}`;
const httpError = (statusCode: number, message: string) =>
  Object.assign(new Error(`(HTTP code ${statusCode}) - ${message}`), { statusCode, json: { message } });

interface Request {
  method: string;
  path: string;
  query?: Record<string, unknown>;
}

/**
 * Images (ID -> tags, parent) and containers (image IDs), served like moby's classic store: a tag delete
 * untags, and deletes the image when it was its last reference (409 if a container uses it then); an ID
 * delete answers 409 while a container uses the image or it has more than one tag. `before` runs first
 * on every request: the other job on the host.
 */
class FakeDaemon implements DockerApi {
  host = HOST;
  tags = new Map<string, string>();
  parents = new Map<string, string>();
  images = new Set<string>();
  containers: { id: string; image: string }[] = [];
  log: Request[] = [];
  before: (req: Request) => void = () => undefined;

  addImage(image: string, tags: string[], parent = ''): void {
    this.images.add(image);
    this.parents.set(image, parent);
    for (const tag of tags) this.tags.set(tag, image);
  }
  tagsOf(image: string): string[] {
    return [...this.tags].filter(([, i]) => i === image).map(([t]) => t);
  }

  async request<T>(method: 'GET' | 'POST' | 'DELETE', path: string, query?: Record<string, unknown>) {
    const req = { method, path, query };
    this.log.push(req);
    this.before(req);
    return this.answer(req) as T;
  }
  ping = async () => undefined;
  probe = async () => undefined;
  timeLeft = () => Infinity;
  close = () => undefined;

  private resolve(name: string): string {
    const image = this.images.has(name) ? name : this.tags.get(name);
    if (!image) throw httpError(404, `No such image: ${name}`);
    return image;
  }
  private answer({ method, path, query }: Request): unknown {
    const image = /^\/images\/([^/]+)(\/json|\/tag)?$/.exec(path);
    const name = image && decodeURIComponent(image[1]);
    if (method === 'GET' && path === '/containers/json') {
      const [ancestor] = JSON.parse(String(query?.filters)).ancestor as string[];
      // Podman 4.3 matches only the ID without `sha256:`: the fake accepts only that form too.
      if (ancestor.startsWith('sha256:')) return [];
      return this.containers
        .filter((c) => c.image === this.resolve(`sha256:${ancestor}`))
        .map((c) => ({ Id: c.id, ImageID: c.image, Names: [`/${c.id}`] }));
    }
    if (method === 'GET' && name && image[2] === '/json') return { Id: this.resolve(name) };
    if (method === 'POST' && name && image[2] === '/tag') {
      this.tags.set(`${query?.repo}:${query?.tag}`, this.resolve(name));
      return undefined;
    }
    if (method === 'DELETE' && name) return this.delete(name, query?.noprune === true);
    throw new Error(`unexpected ${method} ${path}`);
  }
  private delete(name: string, noprune: boolean): unknown {
    const target = this.resolve(name);
    const used = this.containers.find((c) => c.image === target);
    const tags = this.tagsOf(target);
    const items: { Untagged?: string; Deleted?: string }[] = [];
    if (name !== target) {
      if (used && tags.length === 1) throw httpError(409, `conflict: container ${used.id} is using ${name}`);
      this.tags.delete(name);
      items.push({ Untagged: name });
      if (tags.length > 1) return items;
    } else {
      if (used) throw httpError(409, `conflict: image is being used by stopped container ${used.id}`);
      if (tags.length > 1) throw httpError(409, 'conflict: image is referenced in multiple repositories');
      for (const tag of tags) this.tags.delete(tag);
      items.push(...tags.map((Untagged) => ({ Untagged })));
    }
    for (let i: string | undefined = target; i;) {
      this.images.delete(i);
      items.push({ Deleted: i }, { Deleted: layer(i) });
      const parent = this.parents.get(i);
      const orphan = parent && this.tagsOf(parent).length === 0;
      const childless = ![...this.parents].some(([child, p]) => p === parent && this.images.has(child));
      i = !noprune && orphan && childless ? parent : undefined;
    }
    return items;
  }
}

const info = (image: string, repoTags: string[], parentId = ''): ImageInfo =>
  ({ id: image, parentId, repoTags, createdMs: 0, size: 1, labels: {} }) as unknown as ImageInfo;

/** A plan removing `remove` and keeping `keep`, with `cascade` parents going with them. */
function planOf(remove: ImageInfo[], keep: ImageInfo[] = [], cascade: string[] = []): Plan {
  return {
    images: [
      ...remove.map((image) => ({ image, action: 'remove', reason: 'unused', detail: '' })),
      ...keep.map((image) => ({ image, action: 'keep', reason: 'protected', detail: '' })),
    ],
    cascade,
    noPrune: [],
    untagOnly: [],
  } as unknown as Plan;
}

async function apply(docker: FakeDaemon, plan: Plan): Promise<RemovalResult> {
  const [result] = await applyPlan(docker, plan, 1, new Stopper(docker));
  return result;
}
const deletes = (docker: FakeDaemon) => docker.log.filter((r) => r.method === 'DELETE').map((r) => r.path);

describe('removal races: a tag moved by a build between the check and the delete', () => {
  it('the new image that lost its only tag is reported as an unplanned removal', async () => {
    const docker = new FakeDaemon();
    const app = info(id(1), ['app:1', 'app:extra']);
    docker.addImage(app.id, app.repoTags);
    // A build finishes `-t app:extra` just after the check: app:extra now names a new image.
    docker.before = (req) => {
      if (req.method === 'DELETE' && req.path === '/images/app%3Aextra')
        docker.addImage(id(9), ['app:extra']);
    };
    const result = await apply(docker, planOf([app]));
    expect(result.unplanned).toEqual([id(9)]);
    // Not its layers: the classic store lists their chain IDs among the deleted.
    expect(result.unplanned).not.toContain(layer(id(9)));
    // The planned image still went, by ID.
    expect(docker.images.has(app.id)).toBe(false);
  });

  it('a tag delete keeps the parents of an image it removes unplanned (noprune)', async () => {
    const docker = new FakeDaemon();
    const app = info(id(1), ['app:1', 'app:extra']);
    docker.addImage(app.id, app.repoTags);
    docker.before = (req) => {
      if (req.method === 'DELETE' && req.path === '/images/app%3Aextra') {
        // A legacy build: an untagged intermediate and the final image on it.
        docker.addImage(id(8), []);
        docker.addImage(id(9), ['app:extra'], id(8));
      }
    };
    const result = await apply(docker, planOf([app]));
    expect(result.unplanned).toEqual([id(9)]);
    expect(docker.images.has(id(8))).toBe(true);
  });

  it('a planned removal that deletes only what the plan says reports nothing unplanned', async () => {
    const docker = new FakeDaemon();
    const parent = info(id(2), []);
    const app = info(id(1), ['app:1', 'app:2'], parent.id);
    docker.addImage(parent.id, []);
    docker.addImage(app.id, app.repoTags, parent.id);
    const result = await apply(docker, planOf([app], [], [parent.id]));
    expect(result.status).toBe('removed');
    expect(result.deleted).toEqual([app.id, layer(app.id), parent.id, layer(parent.id)]);
    expect(result.unplanned).toBeUndefined();
  });

  it('unplannedIn: an image the plan keeps, deleted as a parent, is reported; layers and cascade are not', () => {
    const kept = info(id(3), []);
    const cascade = info(id(2), []);
    const app = info(id(1), ['app:1']);
    const expected = expectedOf(planOf([app, cascade], [kept], [cascade.id]));
    const items = [app.id, layer(app.id), cascade.id, layer(cascade.id), kept.id].map((Deleted) => ({
      Deleted,
    }));
    expect(unplannedIn([{ Untagged: 'app:1' }, ...items], expected)).toEqual([kept.id]);
    // The first image named is always an image: unknown to the inventory, it is still reported.
    expect(
      unplannedIn([{ Untagged: 'app:x' }, { Deleted: id(9) }, { Deleted: layer(id(9)) }], expected),
    ).toEqual([id(9)]);
    // Podman's answers name images without `sha256:`: its own planned image is not a stranger.
    expect(unplannedIn([{ Untagged: 'localhost/app:1' }, { Deleted: app.id.slice(7) }], expected)).toEqual(
      [],
    );
    expect(unplannedIn([{ Deleted: kept.id.slice(7) }], expected)).toEqual([kept.id]);
  });
});

describe('removal races: a planned image that gains a container after the inventory', () => {
  it('a container there before the untagging: skipped as a conflict, nothing deleted, every tag kept', async () => {
    const docker = new FakeDaemon();
    const app = info(id(1), ['app:1', 'app:2', 'app:3']);
    docker.addImage(app.id, app.repoTags);
    docker.containers.push({ id: 'job', image: app.id });
    const result = await apply(docker, planOf([app]));
    expect(result.status).toBe('conflict');
    expect(result.message).toMatch(/^gained a container since the inventory/);
    expect(deletes(docker)).toEqual([]);
    expect(docker.tagsOf(app.id).sort()).toEqual(app.repoTags);
  });

  it('a container created while its tags go: the final 409 puts the removed tags back', async () => {
    const docker = new FakeDaemon();
    const app = info(id(1), ['app:1', 'app:2', 'app:3']);
    docker.addImage(app.id, app.repoTags);
    docker.before = (req) => {
      if (req.method === 'DELETE' && req.path === '/images/app%3A3')
        docker.containers.push({ id: 'job', image: app.id });
    };
    const result = await apply(docker, planOf([app]));
    expect(result.status).toBe('conflict');
    expect(result.restored).toEqual(['app:2', 'app:3']);
    expect(docker.tagsOf(app.id).sort()).toEqual(app.repoTags);
  });

  it('never takes back a tag a build moved to another image meanwhile', async () => {
    const docker = new FakeDaemon();
    const app = info(id(1), ['app:1', 'app:2', 'app:3']);
    docker.addImage(app.id, app.repoTags);
    docker.before = (req) => {
      if (req.method === 'DELETE' && req.path === `/images/${encodeURIComponent(app.id)}`) {
        docker.addImage(id(9), ['app:3']);
        docker.containers.push({ id: 'job', image: app.id });
      }
    };
    const result = await apply(docker, planOf([app]));
    expect(result.status).toBe('conflict');
    expect(result.restored).toEqual(['app:2']);
    expect(docker.tags.get('app:3')).toBe(id(9));
    expect(docker.tagsOf(app.id).sort()).toEqual(['app:1', 'app:2']);
  });

  it('an image with one tag is not re-checked: Docker refuses the ID delete itself', async () => {
    const docker = new FakeDaemon();
    const app = info(id(1), ['app:1']);
    docker.addImage(app.id, app.repoTags);
    docker.containers.push({ id: 'job', image: app.id });
    const result = await apply(docker, planOf([app]));
    expect(result.status).toBe('conflict');
    expect(docker.log.some((r) => r.path === '/containers/json')).toBe(false);
    expect(docker.tagsOf(app.id)).toEqual(['app:1']);
  });
});

describe('splitTag', () => {
  it.each([
    ['app:1', 'app', '1'],
    ['localhost/app:v1.2', 'localhost/app', 'v1.2'],
    ['registry.example.com:5000/team/app:prod-1', 'registry.example.com:5000/team/app', 'prod-1'],
    ['registry.example.com:5000/team/app', 'registry.example.com:5000/team/app', 'latest'],
  ])('%s', (reference, repo, tag) => {
    expect(splitTag(reference)).toEqual({ repo, tag });
  });
});
