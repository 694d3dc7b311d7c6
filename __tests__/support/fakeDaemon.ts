// A fake daemon for unit tests: a DockerApi that answers request(method, path) from a table and records
// every call, so a test can assert on what the code asked for (and what it did not). `fakeDaemon` takes
// the table as given; `fakeDocker` is a classic-store Docker 20.10 holding the images and containers it
// is given (from ./objects), whose deletes remove them, for tests of a whole pass.
import type { DockerApi } from '../../src/engine/docker';
import type { ContainerInfo, ImageInfo } from '../../src/types';

export const FAKE_HOST = 'unix:///tmp/test/docker.sock';

/** An error the daemon answered with (`statusCode` set), as docker-modem gives it. */
export const httpError = (statusCode: number, message: string) =>
  Object.assign(new Error(`(HTTP code ${statusCode}) - ${message}`), { statusCode, json: { message } });

/** An error met on the way to the daemon: no HTTP answer (refused, reset, timed out). */
export const connError = (code: string, message: string) => Object.assign(new Error(message), { code });

export type Method = 'GET' | 'POST' | 'DELETE';

export interface Call {
  method: Method;
  path: string;
  query?: Record<string, unknown>;
}

/**
 * An answer: a value, or a function of the call and the path's `*` segments (decoded) that returns one
 * or throws the error the daemon answers with.
 */
export type Answer = unknown | ((call: Call, params: string[]) => unknown);

/**
 * Answers by `"METHOD /path"`, where `*` in the path matches one segment, `**` any rest of it, and a
 * method `*` any method;
 * the first key that matches, in the table's order, answers. A call nothing matches fails with a 404.
 */
export type Routes = Record<string, Answer>;

export interface FakeDaemon extends DockerApi {
  /** Every request, in the order made. */
  calls: Call[];
  /** How many times the breaker's check (`probe`) was asked for. */
  probes: number;
  /** The calls with this method (and a path matching `path`, when given). */
  callsTo(method: Method, path?: RegExp): Call[];
}

export interface FakeOptions {
  routes?: Routes;
  /** What `ping` does (resolves: a daemon answers). */
  ping?: () => Promise<void>;
  /** What the breaker's check does (resolves: the daemon still serves requests). */
  probe?: () => Promise<void>;
  timeLeft?: () => number;
  host?: string;
}

export function fakeDaemon(options: FakeOptions = {}): FakeDaemon {
  const routes = Object.entries(options.routes ?? {}).map(([key, answer]) => ({
    match: matcherOf(key),
    answer,
  }));
  const api: FakeDaemon = {
    host: options.host ?? FAKE_HOST,
    calls: [],
    probes: 0,
    callsTo: (method, path) => api.calls.filter((c) => c.method === method && (!path || path.test(c.path))),
    request: async <T>(method: Method, path: string, query?: Record<string, unknown>): Promise<T> => {
      const call: Call = { method, path, ...(query ? { query } : {}) };
      api.calls.push(call);
      for (const { match, answer } of routes) {
        const params = match(method, path);
        if (params) return (typeof answer === 'function' ? await answer(call, params) : answer) as T;
      }
      throw httpError(404, `fake daemon: nothing answers ${method} ${path}`);
    },
    ping: options.ping ?? (async () => undefined),
    probe: async () => {
      api.probes++;
      await options.probe?.();
    },
    timeLeft: options.timeLeft ?? (() => Infinity),
    close: () => undefined,
  };
  return api;
}

/** A route's key as a test of a call: the decoded `*` segments when the call matches. */
function matcherOf(key: string): (method: string, path: string) => string[] | undefined {
  const [method, pattern] = key.split(' ', 2);
  const source = pattern
    .split(/(\*\*|\*)/)
    .map((part) =>
      part === '**' ? '(.*)' : part === '*' ? '([^/]+)' : part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'),
    )
    .join('');
  const regex = new RegExp(`^${source}$`);
  return (m, path) => {
    if (method !== '*' && method !== m) return undefined;
    const found = regex.exec(path);
    return found ? found.slice(1).map(decodeURIComponent) : undefined;
  };
}

/** A container of the fake Docker: as the inventory sees it, with a health status for the safety gates. */
export type FakeContainer = ContainerInfo & { health?: string };

/**
 * A Docker 20.10 daemon (API 1.41, classic store, its data root not on this machine) holding `images`
 * and `containers`: lists, inspects, histories and `/system/df` from them; a DELETE of an image (by ID or
 * its last tag) or a container removes it. `routes` answer before these, to make some calls fail.
 */
export function fakeDocker(
  world: { images: ImageInfo[]; containers?: FakeContainer[] },
  options: FakeOptions = {},
): FakeDaemon & { images: ImageInfo[]; containers: FakeContainer[] } {
  const images = [...world.images];
  const containers = [...(world.containers ?? [])];
  const imageNamed = (name: string) => {
    const image = images.find((i) => i.id === name || i.repoTags.includes(name));
    if (!image) throw httpError(404, `No such image: ${name}`);
    return image;
  };
  const containerNamed = (name: string) => {
    const container = containers.find((c) => c.id === name || c.names.includes(name));
    if (!container) throw httpError(404, `No such container: ${name}`);
    return container;
  };
  const layersSize = () => images.reduce((n, i) => n + i.size, 0);
  const defaults: Routes = {
    'GET /version': { Version: '20.10.24', ApiVersion: '1.41' },
    'GET /info': {
      ID: 'fake',
      DockerRootDir: '/nonexistent/fake-docker',
      Driver: 'overlay2',
      DriverStatus: [],
    },
    'GET /images/json': () => images.map(summaryOf),
    'GET /images/*/json': (_: Call, [name]: string[]) => inspectOf(imageNamed(name)),
    'GET /images/*/history': (_: Call, [name]: string[]) =>
      [...imageNamed(name).layerSizes].reverse().map((Size) => ({ Size })),
    'DELETE /images/*': (_: Call, [name]: string[]) => {
      const image = imageNamed(name);
      if (name !== image.id && image.repoTags.length > 1) {
        image.repoTags = image.repoTags.filter((t) => t !== name);
        return [{ Untagged: name }];
      }
      images.splice(images.indexOf(image), 1);
      return [...image.repoTags.map((Untagged) => ({ Untagged })), { Deleted: image.id }];
    },
    'GET /containers/json': (call: Call) => {
      const ancestor = call.query?.filters && JSON.parse(String(call.query.filters)).ancestor?.[0];
      const listed = ancestor ? containers.filter((c) => c.imageId.endsWith(ancestor)) : containers;
      return listed.map(containerSummaryOf);
    },
    'GET /containers/*/json': (_: Call, [name]: string[]) => containerInspectOf(containerNamed(name)),
    'DELETE /containers/*': (_: Call, [name]: string[]) => {
      containers.splice(containers.indexOf(containerNamed(name)), 1);
      return '';
    },
    'GET /networks': [],
    'GET /system/df': () => ({
      LayersSize: layersSize(),
      Images: images.map((i) => ({ ...summaryOf(i), SharedSize: 0 })),
      Containers: containers.map(containerSummaryOf),
      Volumes: [],
      BuildCache: [],
    }),
  };
  // The test's own routes answer first; a default of the same key is left out, not put back over it.
  const own = options.routes ?? {};
  const rest = Object.fromEntries(Object.entries(defaults).filter(([key]) => !(key in own)));
  const daemon = fakeDaemon({ ...options, routes: { ...own, ...rest } });
  return Object.assign(daemon, { images, containers });
}

function summaryOf(image: ImageInfo) {
  return {
    Id: image.id,
    ParentId: image.parentId,
    RepoTags: image.repoTags,
    RepoDigests: image.repoDigests,
    Created: image.createdMs / 1000,
    Size: image.size,
    Labels: image.labels,
  };
}

function inspectOf(image: ImageInfo) {
  return {
    Id: image.id,
    RootFS: { Layers: image.layers },
    Metadata: { LastTagTime: new Date(image.lastTagMs || image.createdMs).toISOString() },
  };
}

function containerSummaryOf(c: FakeContainer) {
  return {
    Id: c.id,
    Names: c.names.map((n) => `/${n}`),
    Image: c.image,
    ImageID: c.imageId,
    State: c.state,
    Created: c.createdMs / 1000,
    Labels: c.labels,
    SizeRw: c.sizeRw,
  };
}

function containerInspectOf(c: FakeContainer) {
  const running = c.state === 'running';
  const time = (ms: number | undefined) => new Date(ms ?? c.createdMs).toISOString();
  return {
    Name: `/${c.names[0]}`,
    State: {
      Status: c.state,
      Running: running,
      Paused: false,
      Restarting: false,
      StartedAt: time(c.startedMs),
      FinishedAt: time(c.finishedMs),
      ...(c.health ? { Health: { Status: c.health } } : {}),
    },
  };
}
