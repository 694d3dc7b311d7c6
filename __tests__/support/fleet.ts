// Fixture builder: puts a declared set of images and containers on a (private) daemon without a registry.
// Images are loaded from a `docker save`-format tar written here, so their creation times, labels, tags
// and shared layers are exactly what the spec says, and the same spec always gives the same image IDs
// (an image ID is the sha256 of its config JSON).
import { createCipheriv, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import type Dockerode from 'dockerode';

/**
 * One layer. Its content is one file, `layers/<key>`, of `bytes` pseudo-random bytes derived from the key
 * (so it neither compresses nor dedupes), or the given `files`. Docker stores a layer by its chain (the
 * layers below it and itself): images share storage only for a common prefix of their layer lists.
 */
export interface LayerSpec {
  key: string;
  bytes?: number;
  files?: LayerFile[];
}

export interface LayerFile {
  path: string;
  data: Buffer;
  mode?: number;
}

export interface ImageSpec {
  /** `repo:tag` references; [] loads a dangling image. */
  tags: string[];
  layers: LayerSpec[];
  created: string | Date;
  labels?: Record<string, string>;
  /** Metadata-only history entries (size 0, like ENV or LABEL steps), interleaved with the layers. */
  emptyHistorySteps?: number;
  /** Default command (busybox-based images). */
  cmd?: string[];
  /** A name to find the image by in loadImages' result (dangling images have no tag to go by). */
  name?: string;
}

export interface ContainerSpec {
  name: string;
  /** A reference or an image ID. Running and exited containers need an image with /bin/busybox. */
  image: string;
  state: 'created' | 'exited' | 'running';
}

export interface Fleet {
  images: ImageSpec[];
  containers: ContainerSpec[];
}

/** Loads images and then creates containers. */
export async function loadFleet(docker: Dockerode, fleet: Fleet): Promise<Map<string, string>> {
  const ids = await loadImages(docker, fleet.images);
  await createContainers(docker, fleet.containers);
  return ids;
}

/**
 * Loads images with a few `POST /images/load` calls (far faster than one per image). Returns image IDs
 * by every tag, by `name` and by `#<index in specs>`. Specs with identical content (same layers, creation
 * time, labels) are one image, holding the union of their tags.
 */
export async function loadImages(
  docker: Dockerode,
  specs: ImageSpec[],
  opts: { parallel?: number } = {},
): Promise<Map<string, string>> {
  const layers = new Map<string, BuiltLayer>();
  const configs = new Map<string, BuiltConfig>();
  const ids = new Map<string, string>();
  const tagged = new Map<string, string>();
  specs.forEach((spec, index) => {
    const built = spec.layers.map((layer) => buildLayer(layers, layer));
    const json = Buffer.from(JSON.stringify(imageConfig(spec, built)));
    const hex = sha256(json);
    const entry = configs.get(hex) ?? { json, tags: new Set<string>(), layers: built };
    for (const tag of spec.tags) {
      // Tars load in parallel, so "the last one wins" would be a race: a tag names one image.
      if ((tagged.get(tag) ?? hex) !== hex) throw new Error(`tag ${tag} is declared on two different images`);
      tagged.set(tag, hex);
      entry.tags.add(tag);
    }
    configs.set(hex, entry);
    for (const key of [...spec.tags, `#${index}`, ...(spec.name ? [spec.name] : [])]) {
      ids.set(key, `sha256:${hex}`);
    }
  });

  // A few tars loaded side by side beat one (500 images on 2 cores: 22 s as one tar, 13 s as 2 to 4, and
  // 108 ms an image one by one); each tar carries the layers its images need.
  const entries = [...configs];
  const size = Math.ceil(entries.length / Math.max(1, Math.min(opts.parallel ?? 3, entries.length)));
  // No empty tar (4 images in 3 parts would leave one): Podman and the containerd store refuse it.
  const parts = Math.max(1, Math.ceil(entries.length / size));
  const messages = (
    await Promise.all(
      Array.from({ length: parts }, (_, i) => loadTar(docker, entries.slice(i * size, (i + 1) * size))),
    )
  ).flat();

  // The daemon reports tags loaded (and IDs only when no entry had a tag): check the listing instead.
  const listing = await listAllImages(docker);
  const listed = new Set(listing.map((i) => i.Id));
  let missing = [...configs.keys()].filter((hex) => !listed.has(`sha256:${hex}`));
  let unmatched: string[] = [];
  if (missing.length) {
    // On the containerd image store of Docker 28+ an image's ID is the digest of the manifest the daemon
    // writes at load time, not of its config: find each image by what its config holds instead.
    const found = await findByConfig(
      docker,
      listing.filter((i) => ![...configs.keys()].some((hex) => i.Id === `sha256:${hex}`)),
      new Map(missing.map((hex) => [hex, configs.get(hex)!.json])),
    );
    for (const [key, id] of ids) {
      const daemonId = found.ids.get(id.slice(7));
      if (daemonId) ids.set(key, daemonId);
    }
    missing = missing.filter((hex) => !found.ids.has(hex));
    unmatched = found.unmatched;
  }
  if (missing.length) {
    throw new Error(
      `docker load left out ${missing.length} images: ${JSON.stringify(messages)}` +
        (unmatched.length ? `\nimages on the daemon that match no config: ${unmatched.join('\n')}` : ''),
    );
  }
  return ids;
}

/**
 * Every image, intermediate ones too, asked again (3 lists in all) when Podman 4.3 fails the whole list
 * because another client removed an image while it listed (HTTP 500 "… image not known"), as the action's
 * own listImages does: a job on a shared host that lists is not broken by that.
 */
export async function listAllImages(docker: Dockerode): Promise<Dockerode.ImageInfo[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await docker.listImages({ all: true });
    } catch (error) {
      const { statusCode, message } = error as { statusCode?: number; message?: string };
      if (attempt >= 3 || statusCode !== 500 || !/\b(layer|image) not known\b/.test(message ?? ''))
        throw error;
    }
  }
}

/**
 * The daemon's image ID for each config (by config hex), matching what the daemon says of each image
 * (creation time, layers, labels, command, history) with what the config says.
 */
async function findByConfig(
  docker: Dockerode,
  images: { Id: string }[],
  configs: Map<string, Buffer>,
): Promise<{ ids: Map<string, string>; unmatched: string[] }> {
  const print = (
    created: string,
    layers: string[],
    labels: Record<string, string> | null | undefined,
    cmd: unknown,
    history: string[],
  ) =>
    // Labels sorted: the daemon answers them in key order, a spec in its own.
    JSON.stringify([Date.parse(created), layers, Object.entries(labels ?? {}).sort(), cmd ?? null, history]);
  const wanted = new Map<string, string>();
  for (const [hex, json] of configs) {
    const c = JSON.parse(json.toString());
    const history = (c.history as { created_by: string }[]).map((h) => h.created_by);
    wanted.set(print(c.created, c.rootfs.diff_ids, c.config.Labels, c.config.Cmd, history), hex);
  }
  const found = new Map<string, string>();
  const unmatched: string[] = [];
  // Another client may remove listed images meanwhile (jobs and prunes at once, inflight.itg): skip those.
  const unlessGone = <T>(call: Promise<T>) =>
    call.catch((error) =>
      (error as { statusCode?: number }).statusCode === 404 ? undefined : Promise.reject(error),
    );
  await inBatches(images, 8, async (image) => {
    const info = await unlessGone(docker.getImage(image.Id).inspect());
    const steps = await unlessGone(docker.getImage(image.Id).history() as Promise<{ CreatedBy: string }[]>);
    if (!info || !steps) return;
    const history = steps.map((h) => h.CreatedBy).reverse();
    const seen = print(info.Created, info.RootFS.Layers ?? [], info.Config.Labels, info.Config.Cmd, history);
    const hex = wanted.get(seen);
    if (hex) found.set(hex, image.Id);
    else unmatched.push(`${image.Id} ${seen}`);
  });
  return { ids: found, unmatched };
}

/** One `docker load` of the given images (config hex, config, layers) as a `docker save` tar. */
async function loadTar(
  docker: Dockerode,
  entries: [string, BuiltConfig][],
): Promise<Record<string, unknown>[]> {
  const layers = new Map(entries.flatMap(([, c]) => c.layers.map((l) => [l.hex, l])));
  const manifest = entries.map(([hex, c]) => ({
    Config: `${hex}.json`,
    RepoTags: c.tags.size ? [...c.tags] : null,
    Layers: c.layers.map((l) => `${l.hex}/layer.tar`),
  }));
  const files: [string, Buffer][] = [
    ...[...layers.values()].map((l): [string, Buffer] => [`${l.hex}/layer.tar`, l.tar]),
    ...entries.map(([hex, c]): [string, Buffer] => [`${hex}.json`, c.json]),
    ['manifest.json', Buffer.from(JSON.stringify(manifest))],
  ];
  return readJsonStream(await docker.loadImage(tarStream(files), { quiet: true }));
}

/**
 * Builds `tag` with the legacy builder (API `version=1`, i.e. DOCKER_BUILDKIT=0): `FROM <from>` and then
 * `steps` COPY steps. Every step commits an image, so the result has a chain of untagged parent images
 * (`ParentId`), which `docker images` hides. COPY runs no container, so `from` can be any loaded image.
 * Returns the final image ID.
 */
export async function buildLegacy(
  docker: Dockerode,
  opts: { from: string; steps: number; tag: string; bytesPerStep?: number },
): Promise<string> {
  const files: [string, Buffer][] = [];
  let dockerfile = `FROM ${opts.from}\n`;
  for (let i = 0; i < opts.steps; i++) {
    files.push([`s${i}`, randomBytes(`${opts.tag}/step${i}`, opts.bytesPerStep ?? 4096)]);
    dockerfile += `COPY s${i} /steps/s${i}\n`;
  }
  files.unshift(['Dockerfile', Buffer.from(dockerfile)]);
  const stream = await docker.buildImage(tarStream(files), {
    t: opts.tag,
    version: '1',
    rm: true,
    forcerm: true,
  });
  const messages = await readJsonStream(stream);
  const id = messages.map((m) => (m.aux as { ID?: string } | undefined)?.ID).find(Boolean);
  if (!id) throw new Error(`legacy build of ${opts.tag} reported no image ID`);
  return id;
}

/** Creates containers in the given states: created (never started), exited (ran `true`), running. */
export async function createContainers(docker: Dockerode, specs: ContainerSpec[]): Promise<void> {
  await inBatches(specs, 4, async (spec) => {
    const running = spec.state === 'running';
    const container = await docker.createContainer({
      name: spec.name,
      Image: spec.image,
      Cmd: running ? ['/bin/busybox', 'sleep', '3600'] : ['/bin/busybox', 'true'],
      HostConfig: { NetworkMode: 'none' },
    });
    if (spec.state === 'created') return;
    await container.start();
    if (spec.state === 'exited') await container.wait();
  });
}

/** Every image (intermediates too), sorted: for comparing what two daemons hold. */
export async function imageState(docker: Dockerode): Promise<{ id: string; tags: string[] }[]> {
  const images = await docker.listImages({ all: true });
  return images
    .map((i) => ({ id: i.Id, tags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>').sort() }))
    .sort((a, b) => a.id.localeCompare(b.id));
}

/** Removes every container and image: a clean daemon for the next fleet. */
export async function clearDaemon(docker: Dockerode): Promise<void> {
  const containers = await docker.listContainers({ all: true });
  await inBatches(containers, 4, (c) => docker.getContainer(c.Id).remove({ force: true, v: true }));
  // Podman answers this prune with HTTP 500 ("specifying "dangling" filter more than once with different
  // values is not supported"): then the images go one by one, children before their parents.
  const pruned = await docker.pruneImages({ filters: { dangling: ['false'] } }).then(
    () => true,
    () => false,
  );
  // The containerd store's prune leaves legacy-builder parents behind: remove what is left one by one.
  if (!pruned || (await docker.listImages({ all: true })).length > 0) await removeEveryImage(docker);
  const left = await docker.listImages({ all: true });
  if (left.length) throw new Error(`${left.length} images left after clearing the daemon`);
}

async function removeEveryImage(docker: Dockerode): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const images = await docker.listImages({ all: true });
    if (!images.length) return;
    const parents = new Set(images.map((i) => i.ParentId).filter(Boolean));
    const leaves = images.filter((i) => !parents.has(i.Id));
    await inBatches(leaves.length ? leaves : images, 4, (i) =>
      docker
        .getImage(i.Id)
        .remove({ force: true })
        .catch(() => undefined),
    );
  }
}

/** The host's static busybox as the only layer: an image that can run containers. */
export function busyboxLayer(): LayerSpec {
  busybox ??= readFileSync(process.env.SDP_BUSYBOX ?? '/bin/busybox');
  return { key: 'busybox', files: [{ path: 'bin/busybox', data: busybox, mode: 0o755 }] };
}
let busybox: Buffer | undefined;

export function busyboxImage(tag: string, created: string | Date = '2024-01-01T00:00:00Z'): ImageSpec {
  return { tags: [tag], layers: [busyboxLayer()], created, cmd: ['/bin/busybox', 'sh'] };
}

const DAY = 86_400_000;

/**
 * A small, varied fleet: several repositories with tags of different ages on shared base layers, a tag
 * in two repositories, dangling images, labelled images, metadata-only history steps, and one container
 * in each state. `prefix` namespaces the repositories (default `sample`).
 */
export function sampleFleet(opts: { now?: number | Date; prefix?: string } = {}): Fleet {
  const now = +(opts.now ?? Date.now());
  const p = opts.prefix ?? 'sample';
  const ago = (days: number) => new Date(now - days * DAY);
  const bb = busyboxLayer();
  const node = [bb, { key: `${p}-node-runtime`, bytes: 300_000 }];
  const web = [...node, { key: `${p}-web-deps`, bytes: 100_000 }];
  const webVersion = (v: string, days: number, tags: string[], name?: string): ImageSpec => ({
    tags,
    name,
    layers: [...web, { key: `${p}-web-${v}`, bytes: 20_000 }],
    created: ago(days),
    labels: { 'org.opencontainers.image.version': v },
    cmd: ['/bin/busybox', 'sh'],
  });
  const images: ImageSpec[] = [
    { ...busyboxImage(`${p}/base:1`, ago(200)), labels: { 'org.opencontainers.image.vendor': p } },
    webVersion('v1', 120, [`${p}/web:v1`]),
    webVersion('v2', 60, [`${p}/web:v2`]),
    webVersion('v3', 20, [`${p}/web:v3`]),
    webVersion('v4', 2, [`${p}/web:v4`, `${p}/web:latest`, `registry.example.com/${p}/web:v4`]),
    // Earlier builds whose tags moved on: dangling, one old and one recent.
    webVersion('old-a', 150, [], `${p}-dangling-old`),
    webVersion('old-b', 10, [], `${p}-dangling-recent`),
    ...[
      ['v1', 90],
      ['v2', 30],
      ['v3', 5],
    ].map(([v, days]) => ({
      tags: [`${p}/worker:${v}`],
      layers: [...node, { key: `${p}-worker-${v}`, bytes: 15_000 }],
      created: ago(+days),
      labels: { 'com.example.role': 'worker' },
      cmd: ['/bin/busybox', 'sh'],
    })),
    ...[
      ['15', 300],
      ['16', 100],
    ].map(([v, days]) => ({
      tags: [`${p}/db:${v}`],
      layers: [
        { key: `${p}-db-base`, bytes: 200_000 },
        { key: `${p}-db-${v}`, bytes: 50_000 },
      ],
      created: ago(+days),
      labels: { keep: 'true', 'com.example.role': 'db' },
    })),
    {
      tags: [`${p}/tool:latest`],
      layers: [bb, { key: `${p}-tool`, bytes: 50_000 }],
      created: ago(45),
      emptyHistorySteps: 3,
      cmd: ['/bin/busybox', 'sh'],
    },
    { tags: [`${p}/solo:1`], layers: [{ key: `${p}-solo`, bytes: 64_000 }], created: ago(400) },
  ];
  const containers: ContainerSpec[] = [
    { name: `${p}-running`, image: `${p}/web:v3`, state: 'running' },
    { name: `${p}-exited`, image: `${p}/worker:v2`, state: 'exited' },
    { name: `${p}-created`, image: `${p}/db:15`, state: 'created' },
  ];
  return { images, containers };
}

/**
 * A large fleet for benchmarks: `images` images in families of 10 across 12 repositories. A family shares
 * a base layer with a quarter of all families and a family layer with its own; each image adds a small
 * layer. One image in 25 is dangling; one in 5 (`used` of them, never a dangling one) has a created
 * container. Ages step by an hour.
 */
export function scaleFleet(
  opts: { images?: number; used?: number; now?: number | Date; prefix?: string } = {},
): Fleet {
  const count = opts.images ?? 500;
  const used = opts.used ?? Math.floor(count / 5);
  const now = +(opts.now ?? Date.now());
  const p = opts.prefix ?? 'fleet';
  const images: ImageSpec[] = [];
  const containers: ContainerSpec[] = [];
  for (let i = 0; i < count; i++) {
    const family = Math.floor(i / 10);
    const dangling = i % 25 === 3;
    const tag = `${p}/app-${family % 12}:f${family}-v${i % 10}`;
    images.push({
      tags: dangling ? [] : [tag],
      layers: [
        { key: `${p}-os-${family % 4}`, bytes: 32_768 },
        { key: `${p}-family-${family}`, bytes: 16_384 },
        { key: `${p}-image-${i}`, bytes: 2048 + (i % 7) * 1024 },
      ],
      created: new Date(now - (i + 1) * 3_600_000),
      labels: i % 3 === 0 ? { 'com.example.team': `team-${family % 5}` } : undefined,
    });
    if (i % 5 === 0 && containers.length < used) {
      containers.push({ name: `${p}-c${i}`, image: tag, state: 'created' });
    }
  }
  return { images, containers };
}

// --- image config and layers -------------------------------------------------------------------------

interface BuiltConfig {
  json: Buffer;
  tags: Set<string>;
  layers: BuiltLayer[];
}

interface BuiltLayer {
  key: string;
  bytes: number | undefined;
  tar: Buffer;
  /** sha256 of the uncompressed layer tar: the diff ID. */
  hex: string;
  size: number;
}

function buildLayer(cache: Map<string, BuiltLayer>, spec: LayerSpec): BuiltLayer {
  const known = cache.get(spec.key);
  if (known) {
    if (known.bytes !== spec.bytes) throw new Error(`layer ${spec.key} is declared with two sizes`);
    return known;
  }
  const name = spec.key.length <= 80 ? spec.key.replace(/[^\w.-]/g, '_') : sha256(Buffer.from(spec.key));
  const files = spec.files ?? [{ path: `layers/${name}`, data: randomBytes(spec.key, spec.bytes ?? 0) }];
  const chunks: Buffer[] = [];
  const dirs = new Set<string>();
  for (const file of files) {
    // Parent directories first, as a real layer has them.
    const parts = file.path.split('/').slice(0, -1);
    parts.forEach((_, i) => {
      const dir = parts.slice(0, i + 1).join('/') + '/';
      if (!dirs.has(dir)) chunks.push(...tarEntry(dir, Buffer.alloc(0), 0o755, '5'));
      dirs.add(dir);
    });
    chunks.push(...tarEntry(file.path, file.data, file.mode ?? 0o644));
  }
  chunks.push(TAR_END);
  const tar = Buffer.concat(chunks);
  const layer = {
    key: spec.key,
    bytes: spec.bytes,
    tar,
    hex: sha256(tar),
    size: files.reduce((n, f) => n + f.data.length, 0),
  };
  cache.set(spec.key, layer);
  return layer;
}

function imageConfig(spec: ImageSpec, layers: BuiltLayer[]) {
  const created = new Date(spec.created).toISOString();
  const history: { created: string; created_by: string; empty_layer?: boolean }[] = [];
  const empty = spec.emptyHistorySteps ?? 0;
  const label = (j: number) => ({ created, created_by: `LABEL step=${j}`, empty_layer: true });
  // Metadata-only steps follow the layers round-robin (or stand alone in an image without layers).
  for (let j = 0; j < empty && !layers.length; j++) history.push(label(j));
  layers.forEach((layer, i) => {
    history.push({ created, created_by: `COPY ${layer.key} / # ${layer.size} bytes` });
    for (let j = i; j < empty; j += layers.length) history.push(label(j));
  });
  return {
    architecture: 'amd64',
    os: 'linux',
    created,
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: spec.cmd ?? null,
      Labels: spec.labels ?? null,
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${l.hex}`) },
    history,
  };
}

/** `n` deterministic bytes that look random (AES-CTR keystream seeded by `seed`). */
function randomBytes(seed: string, n: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  return createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16)).update(Buffer.alloc(n));
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

// --- a minimal ustar writer -------------------------------------------------------------------------

const TAR_END = Buffer.alloc(1024);
/** Fixed mtime: the same content always gives the same layer tar, hence the same diff ID. */
const MTIME = 1_700_000_000;

/** A tar archive of the given files, streamed. */
function tarStream(files: [string, Buffer][]): Readable {
  return Readable.from(
    (function* () {
      for (const [name, data] of files) yield* tarEntry(name, data);
      yield TAR_END;
    })(),
  );
}

function tarEntry(name: string, data: Buffer, mode = 0o644, type: '0' | '5' = '0'): Buffer[] {
  const header = Buffer.alloc(512);
  // Names here are short (long layer keys are hashed), so the ustar prefix field is never needed.
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name too long: ${name}`);
  const field = (offset: number, length: number, value: string) =>
    header.write(value, offset, length, 'utf8');
  const octal = (offset: number, length: number, value: number) =>
    field(offset, length, value.toString(8).padStart(length - 1, '0') + '\0');
  field(0, 100, name);
  octal(100, 8, mode);
  octal(108, 8, 0); // uid
  octal(116, 8, 0); // gid
  octal(124, 12, data.length);
  octal(136, 12, MTIME);
  field(148, 8, ' '.repeat(8)); // checksum placeholder: spaces while summing
  field(156, 1, type);
  field(257, 8, 'ustar\u000000');
  field(265, 32, 'root');
  field(297, 32, 'root');
  const sum = header.reduce((n, byte) => n + byte, 0);
  field(148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  const padding = Buffer.alloc((512 - (data.length % 512)) % 512);
  return [header, data, padding];
}

// --- helpers ------------------------------------------------------------------------------------------

/** Reads a JSON-lines progress stream (load, build) to its end; throws on an `error` message. */
export async function readJsonStream(stream: NodeJS.ReadableStream): Promise<Record<string, unknown>[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  const messages = Buffer.concat(chunks)
    .toString()
    .split(/\r?\n/)
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const failed = messages.find((m) => m.error || m.errorDetail);
  if (failed) {
    throw new Error(`Docker reported: ${String(failed.error ?? JSON.stringify(failed.errorDetail))}`);
  }
  return messages;
}

async function inBatches<T>(items: T[], size: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

/** A running container with a Docker healthcheck (see createHealthcheckContainer). */
export interface HealthcheckContainerSpec {
  name: string;
  /** An image with /bin/busybox. */
  image: string;
  /** The probe, e.g. `['CMD', '/bin/busybox', 'false']`. */
  test: string[];
  intervalMs: number;
  retries?: number;
  /** Failures during the start period do not count: the status stays `starting` until a probe passes. */
  startPeriodMs?: number;
  timeoutMs?: number;
  /** The container's command; default: sleep for an hour. */
  cmd?: string[];
}

/**
 * Creates and starts a container with a healthcheck. Docker (20.10) runs the first probe one interval
 * after the start, so a long interval keeps the status `starting` that long. Returns the container ID.
 */
export async function createHealthcheckContainer(
  docker: Dockerode,
  spec: HealthcheckContainerSpec,
): Promise<string> {
  const ms = 1_000_000; // the API takes nanoseconds
  const container = await docker.createContainer({
    name: spec.name,
    Image: spec.image,
    Cmd: spec.cmd ?? ['/bin/busybox', 'sleep', '3600'],
    HostConfig: { NetworkMode: 'none' },
    Healthcheck: {
      Test: spec.test,
      Interval: spec.intervalMs * ms,
      Retries: spec.retries ?? 1,
      Timeout: (spec.timeoutMs ?? 5000) * ms,
      StartPeriod: (spec.startPeriodMs ?? 0) * ms,
    },
  });
  await container.start();
  return container.id;
}

/** A container's health status (`starting`, `healthy`, `unhealthy`), or undefined without a healthcheck. */
export async function healthStatus(docker: Dockerode, name: string): Promise<string | undefined> {
  const info = await docker.getContainer(name).inspect();
  return (info.State as { Health?: { Status?: string } }).Health?.Status;
}

/** Polls until the container's health status is `status`; throws after `timeoutMs`. */
export async function waitForHealth(
  docker: Dockerode,
  name: string,
  status: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await healthStatus(docker, name);
    if (now === status) return;
    if (Date.now() > deadline)
      throw new Error(`container ${name} is ${now}, not ${status}, after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
