// containerd's own databases read from disk where this machine can read them (root on the daemon's host),
// instead of one API request per image. Both are bbolt files, read page by page as a read needs them
// (about a page per image or snapshot, however large the file: containerd's meta.db grows past 100 MB on
// a busy host and never shrinks) and never locked (containerd holds them open). A read is of one
// transaction: the newest meta page's, checked again at its end, since containerd reuses that
// transaction's pages only after a newer one commits; a read a commit overtook is taken again, at most
// READ_ATTEMPTS times. Anything unexpected in a file ends its read, and the API is asked instead.
// - The snapshotter's (overlayfs, native) `metadata.db` beside the snapshots: bucket `v1` → `snapshots`
//   holds one bucket per snapshot, keyed `<namespace>/<n>/<name>`, with `kind` (one byte, 3 for committed)
//   and `size` (a signed varint) set at commit (containerd core/snapshots/storage/bolt.go). A committed
//   snapshot never changes, and its size there is the one the API's image history gives (the snapshotter's
//   Usage). Docker names an image layer's snapshot by its chain ID, in the namespace `moby`.
// - containerd's metadata `meta.db`: `v1` → namespace → `images` → image name → `target` → `digest`, and
//   `updatedat` (Go's binary time) (containerd core/metadata/buckets.go). Docker's inspect gives as an
//   image's LastTagTime the latest `updatedat` of the records naming its target (moby
//   daemon/containerd/image_inspect.go).

import { constants, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

/** Reads of one file a commit may overtake before the API is asked instead. */
export const READ_ATTEMPTS = 3;

const BRANCH = 0x01;
const LEAF = 0x02;
const META = 0x04;
const BUCKET_ENTRY = 0x01;
const MAGIC = 0xed0cdaed;
const COMMITTED = 3;
/** Pages visited per read: a loop in a damaged file ends here. */
const MAX_PAGES = 1_000_000;
/** One page with its overflow pages: containerd's records are far smaller. */
const MAX_PAGE_BYTES = 16 * 1024 * 1024;

class BoltError extends Error {}

/** A newer transaction committed while a read was under way: its pages may have been reused. */
class Overtaken extends BoltError {}

/** Where a read takes a file's bytes: `length` bytes at `offset`, or a BoltError where the file has fewer. */
export interface Source {
  read(offset: number, length: number): Buffer;
}

/** A file already in memory (the tests' files). */
export function bufferSource(buf: Buffer): Source {
  return {
    read(offset, length) {
      if (offset + length > buf.length) throw new BoltError(`${offset + length} bytes past the file's end`);
      return buf.subarray(offset, offset + length);
    },
  };
}

/** An open file, read where a page is needed. */
function fileSource(fd: number): Source {
  return {
    read(offset, length) {
      // Filled whole by the read, or thrown away.
      const bytes = Buffer.allocUnsafe(length);
      if (readSync(fd, bytes, 0, length, offset) !== length) {
        throw new BoltError(`${offset + length} bytes past the file's end`);
      }
      return bytes;
    },
  };
}

/** The file's pages as a read sees them, and how many it has visited. */
interface Bolt {
  source: Source;
  pageSize: number;
  visited: number;
}

/** FNV-1a, 64 bits: bbolt's meta checksum. */
function fnv64a(bytes: Buffer): bigint {
  let hash = 0xcbf29ce484222325n;
  for (const byte of bytes) hash = BigInt.asUintN(64, (hash ^ BigInt(byte)) * 0x100000001b3n);
  return hash;
}

interface Meta {
  root: number;
  pageSize: number;
  txid: bigint;
}

/** The meta page at `offset`: its root bucket's page and its transaction, when it is valid. */
function metaAt(source: Source, offset: number): Meta | undefined {
  let page: Buffer;
  try {
    page = source.read(offset, 16 + 64);
  } catch (error) {
    if (error instanceof BoltError) return undefined;
    throw error;
  }
  if (page.readUInt16LE(8) !== META) return undefined;
  const m = page.subarray(16);
  if (m.readUInt32LE(0) !== MAGIC || m.readUInt32LE(4) !== 2) return undefined;
  if (m.readBigUInt64LE(56) !== fnv64a(m.subarray(0, 56))) return undefined;
  return { root: Number(m.readBigUInt64LE(16)), pageSize: m.readUInt32LE(8), txid: m.readBigUInt64LE(48) };
}

/** The newer of the file's two valid meta pages. */
function newestMeta(source: Source): Meta {
  const first = metaAt(source, 0);
  const pageSize = first?.pageSize ?? 4096;
  if (pageSize < 512 || pageSize > 65536) throw new BoltError(`page size ${pageSize}`);
  const metas = [first, metaAt(source, pageSize)].filter((m) => m !== undefined);
  if (metas.length === 0) throw new BoltError('no valid meta page');
  return metas.reduce((a, b) => (b.txid > a.txid ? b : a));
}

/**
 * `read` of the file's newest transaction, from its root bucket's page. Its pages are the transaction's
 * as long as no newer one has committed (containerd reuses them only after that), so the meta pages are
 * read again at the end: a read a commit overtook throws Overtaken.
 */
function inTransaction<T>(source: Source, read: (bolt: Bolt, root: Buffer) => T): T {
  const meta = newestMeta(source);
  const bolt = { source, pageSize: meta.pageSize, visited: 0 };
  const result = read(bolt, pageAt(bolt, meta.root));
  if (newestMeta(source).txid !== meta.txid) throw new Overtaken('a newer transaction committed meanwhile');
  return result;
}

/** Page `id` of the file, with its overflow pages. */
function pageAt(bolt: Bolt, id: number): Buffer {
  if (id < 2 || !Number.isSafeInteger(id * bolt.pageSize))
    throw new BoltError(`page ${id} is outside the file`);
  const offset = id * bolt.pageSize;
  let page: Buffer;
  try {
    page = bolt.source.read(offset, bolt.pageSize);
  } catch (error) {
    if (error instanceof BoltError) throw new BoltError(`page ${id} is outside the file`);
    throw error;
  }
  if (Number(page.readBigUInt64LE(0)) !== id) throw new BoltError(`page ${id} is not itself`);
  const overflow = page.readUInt32LE(12);
  if (overflow === 0) return page;
  if ((overflow + 1) * bolt.pageSize > MAX_PAGE_BYTES)
    throw new BoltError(`page ${id} has ${overflow} overflow pages`);
  try {
    // The overflow pages only: the first is read already.
    return Buffer.concat([page, bolt.source.read(offset + bolt.pageSize, overflow * bolt.pageSize)]);
  } catch (error) {
    if (error instanceof BoltError) throw new BoltError(`page ${id} runs past the file`);
    throw error;
  }
}

interface Entry {
  key: Buffer;
  value: Buffer;
  bucket: boolean;
}

/** Every key of the bucket whose root page is `page`, in order, descending its branch pages. */
function entries(bolt: Bolt, page: Buffer, depth = 0): Entry[] {
  if (++bolt.visited > MAX_PAGES || depth > 64) throw new BoltError('too many pages');
  const flags = page.readUInt16LE(8);
  const count = page.readUInt16LE(10);
  if (flags !== BRANCH && flags !== LEAF) throw new BoltError(`page of kind ${flags} inside a bucket`);
  if (16 + count * 16 > page.length) throw new BoltError('elements past the page');
  const out: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const e = 16 + i * 16;
    if (flags === BRANCH) {
      // Appended one by one: a bucket of many thousands of keys would overflow a spread's arguments.
      for (const entry of entries(bolt, pageAt(bolt, Number(page.readBigUInt64LE(e + 8))), depth + 1)) {
        out.push(entry);
      }
    } else {
      const pos = e + page.readUInt32LE(e + 4);
      const ksize = page.readUInt32LE(e + 8);
      const vsize = page.readUInt32LE(e + 12);
      if (pos + ksize + vsize > page.length) throw new BoltError('an element runs past its page');
      out.push({
        key: page.subarray(pos, pos + ksize),
        value: page.subarray(pos + ksize, pos + ksize + vsize),
        bucket: (page.readUInt32LE(e) & BUCKET_ENTRY) !== 0,
      });
    }
  }
  return out;
}

/** The root page of a nested bucket from its entry: a page of the file, or inline after its header. */
function bucketPage(bolt: Bolt, entry: Entry): Buffer {
  if (!entry.bucket || entry.value.length < 16) throw new BoltError(`${entry.key.toString()} is no bucket`);
  const root = Number(entry.value.readBigUInt64LE(0));
  if (root !== 0) return pageAt(bolt, root);
  if (entry.value.length < 32) throw new BoltError('an inline bucket without its page');
  return entry.value.subarray(16);
}

/** The bucket `name` in the bucket at `page`; undefined when it has none. */
function child(bolt: Bolt, page: Buffer, name: string): Buffer | undefined {
  const entry = entries(bolt, page).find((e) => e.bucket && e.key.toString('latin1') === name);
  return entry && bucketPage(bolt, entry);
}

/** A signed (zigzag) varint, as Go's binary.PutVarint writes it. */
export function readVarint(bytes: Buffer): number | undefined {
  let value = 0n;
  for (let i = 0; i < bytes.length && i < 10; i++) {
    value |= BigInt(bytes[i] & 0x7f) << BigInt(7 * i);
    if ((bytes[i] & 0x80) === 0) {
      const signed = value & 1n ? -(value >> 1n) - 1n : value >> 1n;
      return Number(signed);
    }
  }
  return undefined;
}

/**
 * The committed snapshots' sizes in a snapshotter's bbolt database `file`, by name, for the namespace
 * `namespace`. A name seen twice in it (a snapshot removed and made again under another key) is left out.
 * Throws a BoltError on anything unexpected.
 */
export function committedSizes(file: Buffer | Source, namespace: string): Map<string, number> {
  return inTransaction(sourceOf(file), (bolt, root) => snapshotSizes(bolt, root, namespace));
}

const sourceOf = (file: Buffer | Source) => (Buffer.isBuffer(file) ? bufferSource(file) : file);

function snapshotSizes(bolt: Bolt, root: Buffer, namespace: string): Map<string, number> {
  const v1 = child(bolt, root, 'v1');
  const snapshots = v1 && child(bolt, v1, 'snapshots');
  const sizes = new Map<string, number>();
  const twice = new Set<string>();
  if (!snapshots) return sizes;
  const prefix = `${namespace}/`;
  for (const entry of entries(bolt, snapshots)) {
    const key = entry.key.toString('latin1');
    if (!entry.bucket || !key.startsWith(prefix)) continue;
    const name = /^[^/]+\/\d+\/(.+)$/.exec(key)?.[1];
    if (!name) continue;
    const fields = fieldsOf(bolt, entry);
    if (fields.get('kind')?.value[0] !== COMMITTED) continue;
    const size = readVarint(fields.get('size')?.value ?? Buffer.alloc(0));
    if (size === undefined || size < 0) continue;
    if (sizes.has(name)) twice.add(name);
    sizes.set(name, size);
  }
  for (const name of twice) sizes.delete(name);
  return sizes;
}

/**
 * The sizes of the committed snapshots of Docker's namespace, by name (a layer's chain ID), from the
 * snapshotter `driver`'s database beside the content store `contentDir`; undefined where it is absent,
 * unreadable or not as expected.
 */
export async function readSnapshotSizes(
  contentDir: string,
  driver: string,
): Promise<Map<string, number> | undefined> {
  if (!/^[a-z0-9.-]+$/i.test(driver)) return undefined;
  const file = join(contentDir, '..', `io.containerd.snapshotter.v1.${driver}`, 'metadata.db');
  return readDb(file, (source) => committedSizes(source, 'moby'));
}

/** Seconds from Go's zero time (January 1, year 1, UTC) to the Unix epoch. */
const GO_EPOCH_OFFSET_S = 62_135_596_800n;

/** A time as Go's time.MarshalBinary writes it (version 1 or 2), as epoch ms; undefined when it is not one. */
export function goTimeMs(bytes: Buffer | undefined): number | undefined {
  if (!bytes || !((bytes[0] === 1 && bytes.length === 15) || (bytes[0] === 2 && bytes.length === 16))) {
    return undefined;
  }
  const seconds = bytes.readBigInt64BE(1) - GO_EPOCH_OFFSET_S;
  return Number(seconds) * 1000 + Math.floor(bytes.readInt32BE(9) / 1e6);
}

/** The fields of the bucket of `entry`: values, and nested buckets' pages, by key. */
function fieldsOf(bolt: Bolt, entry: Entry): Map<string, Entry> {
  return new Map(entries(bolt, bucketPage(bolt, entry)).map((e) => [e.key.toString('latin1'), e]));
}

/**
 * When each image target was last tagged in the namespace `namespace` of containerd's metadata database
 * `file`: the latest `updatedat` of the image records naming it, by target digest. Throws a BoltError on
 * anything unexpected.
 */
export function targetTagTimes(file: Buffer | Source, namespace: string): Map<string, number> {
  return inTransaction(sourceOf(file), (bolt, root) => tagTimes(bolt, root, namespace));
}

function tagTimes(bolt: Bolt, root: Buffer, namespace: string): Map<string, number> {
  const v1 = child(bolt, root, 'v1');
  const ns = v1 && child(bolt, v1, namespace);
  const images = ns && child(bolt, ns, 'images');
  const times = new Map<string, number>();
  if (!images) return times;
  for (const record of entries(bolt, images)) {
    if (!record.bucket) continue;
    const fields = fieldsOf(bolt, record);
    const target = fields.get('target');
    const digest = target?.bucket
      ? fieldsOf(bolt, target).get('digest')?.value.toString('latin1')
      : undefined;
    const updated = goTimeMs(fields.get('updatedat')?.value);
    if (!digest || updated === undefined) throw new BoltError(`image record ${record.key.toString()} unread`);
    times.set(digest, Math.max(times.get(digest) ?? 0, updated));
  }
  return times;
}

/**
 * When each image target of Docker's namespace was last tagged (see targetTagTimes), from containerd's
 * metadata database beside the content store `contentDir`; undefined where it is absent, unreadable
 * or not as expected.
 */
export async function readTagTimes(contentDir: string): Promise<Map<string, number> | undefined> {
  return readDb(join(contentDir, '..', 'io.containerd.metadata.v1.bolt', 'meta.db'), (source) =>
    targetTagTimes(source, 'moby'),
  );
}

/** `parse` of `source`, taken again where a commit overtook it: at most READ_ATTEMPTS reads. */
export function readSettled<T>(source: Source, parse: (source: Source) => T): T {
  for (let attempt = 1; ; attempt++) {
    try {
      return parse(source);
    } catch (error) {
      if (!(error instanceof Overtaken) || attempt >= READ_ATTEMPTS) throw error;
    }
  }
}

/**
 * `parse` of the bbolt file `file` (see readSettled); undefined where it is absent, no regular file,
 * unreadable, overtaken at every read or not as expected.
 */
async function readDb<T>(file: string, parse: (source: Source) => T): Promise<T | undefined> {
  let handle;
  try {
    // Without blocking on a FIFO planted at the name; then only a regular file is read.
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
    if (!(await handle.stat()).isFile()) return undefined;
    return readSettled(fileSource(handle.fd), parse);
  } catch (error) {
    if (error instanceof BoltError || (error as NodeJS.ErrnoException).code !== undefined) return undefined;
    throw error;
  } finally {
    await handle?.close();
  }
}
