// containerd's snapshot database read as bbolt lays it out (src/engine/containerd-db.ts): files written here
// page by page as bbolt writes them (meta pages with their checksum, leaf and branch pages, inline and
// page-rooted buckets), then damaged: every damage ends the read, never a wrong size. The reader against
// a real containerd's file is in content-api.itg.test.ts.
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  bufferSource,
  committedSizes,
  goTimeMs,
  READ_ATTEMPTS,
  readSettled,
  readSnapshotSizes,
  readTagTimes,
  readVarint,
  targetTagTimes,
  type Source,
} from '../src/engine/containerd-db';

const PAGE = 4096;

interface Item {
  key: string;
  /** A value, or a nested bucket: its items inline, or on page `page`. */
  value?: Buffer;
  bucket?: { items: Item[]; page?: number };
}

/** A page's header: id, flags, count, overflow. */
function header(id: number, flags: number, count: number): Buffer {
  const h = Buffer.alloc(16);
  h.writeBigUInt64LE(BigInt(id), 0);
  h.writeUInt16LE(flags, 8);
  h.writeUInt16LE(count, 10);
  return h;
}

/** A leaf page of `items`, as bbolt lays one out: elements after the header, then each key and value. */
function leaf(id: number, items: Item[]): Buffer {
  const elements = Buffer.alloc(items.length * 16);
  const data: Buffer[] = [];
  let at = 16 + elements.length;
  items.forEach((item, i) => {
    const value = item.bucket ? bucketValue(item.bucket) : item.value!;
    const key = Buffer.from(item.key, 'latin1');
    elements.writeUInt32LE(item.bucket ? 1 : 0, i * 16);
    elements.writeUInt32LE(at - (16 + i * 16), i * 16 + 4);
    elements.writeUInt32LE(key.length, i * 16 + 8);
    elements.writeUInt32LE(value.length, i * 16 + 12);
    data.push(key, value);
    at += key.length + value.length;
  });
  return Buffer.concat([header(id, 0x02, items.length), elements, ...data]);
}

/** A bucket's value: its root page and sequence, and its page inline when it has no page of its own. */
function bucketValue(bucket: { items: Item[]; page?: number }): Buffer {
  const head = Buffer.alloc(16);
  head.writeBigUInt64LE(BigInt(bucket.page ?? 0), 0);
  return bucket.page ? head : Buffer.concat([head, leaf(0, bucket.items)]);
}

/** A branch page over child pages, each named by its first key. */
function branch(id: number, children: { key: string; page: number }[]): Buffer {
  const elements = Buffer.alloc(children.length * 16);
  const keys: Buffer[] = [];
  let at = 16 + elements.length;
  children.forEach((c, i) => {
    const key = Buffer.from(c.key);
    elements.writeUInt32LE(at - (16 + i * 16), i * 16);
    elements.writeUInt32LE(key.length, i * 16 + 4);
    elements.writeBigUInt64LE(BigInt(c.page), i * 16 + 8);
    keys.push(key);
    at += key.length;
  });
  return Buffer.concat([header(id, 0x01, children.length), elements, ...keys]);
}

/** A meta page: the root bucket's page, the transaction, and the checksum over what precedes it. */
function meta(id: number, root: number, txid: number): Buffer {
  const m = Buffer.alloc(64);
  m.writeUInt32LE(0xed0cdaed, 0);
  m.writeUInt32LE(2, 4);
  m.writeUInt32LE(PAGE, 8);
  m.writeBigUInt64LE(BigInt(root), 16);
  m.writeBigUInt64LE(2n, 32);
  m.writeBigUInt64LE(BigInt(txid), 48);
  let hash = 0xcbf29ce484222325n;
  for (const byte of m.subarray(0, 56)) hash = BigInt.asUintN(64, (hash ^ BigInt(byte)) * 0x100000001b3n);
  m.writeBigUInt64LE(hash, 56);
  return Buffer.concat([header(id, 0x04, 0), m]);
}

/** A file of `pages` by id, each padded to the page size. */
function file(pages: Map<number, Buffer>): Buffer {
  const last = Math.max(...pages.keys());
  const buf = Buffer.alloc((last + 1) * PAGE);
  for (const [id, page] of pages) page.copy(buf, id * PAGE);
  return buf;
}

/** Go's binary.PutVarint. */
function varint(n: number): Buffer {
  let z = BigInt(n) >= 0n ? BigInt(n) << 1n : (-BigInt(n) << 1n) - 1n;
  const bytes: number[] = [];
  while (z >= 0x80n) {
    bytes.push(Number(z & 0x7fn) | 0x80);
    z >>= 7n;
  }
  bytes.push(Number(z));
  return Buffer.from(bytes);
}

const snapshot = (key: string, kind: number, size: number): Item => ({
  key,
  bucket: {
    items: [
      { key: 'id', value: Buffer.from([7]) },
      { key: 'kind', value: Buffer.from([kind]) },
      { key: 'size', value: varint(size) },
    ],
  },
});

/** A database of `snaps` as containerd's storage keeps them, the snapshots bucket on pages of its own. */
function database(snaps: Item[], opts: { split?: boolean } = {}): Buffer {
  const pages = new Map<number, Buffer>([
    [0, meta(0, 3, 4)],
    [1, meta(1, 3, 3)],
    [2, header(2, 0x10, 0)],
    [3, leaf(3, [{ key: 'v1', bucket: { items: [{ key: 'snapshots', bucket: { items: [], page: 4 } }] } }])],
  ]);
  if (opts.split) {
    const half = Math.ceil(snaps.length / 2);
    pages.set(
      4,
      branch(4, [
        { key: snaps[0].key, page: 5 },
        { key: snaps[half].key, page: 6 },
      ]),
    );
    pages.set(5, leaf(5, snaps.slice(0, half)));
    pages.set(6, leaf(6, snaps.slice(half)));
  } else pages.set(4, leaf(4, snaps));
  return file(pages);
}

const chain = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

describe("containerd's snapshot database", () => {
  it('reads the size of each committed snapshot of the namespace, by name, across branch pages', () => {
    const snaps = [
      snapshot(`moby/1/${chain(1)}`, 3, 4096),
      snapshot(`moby/2/${chain(2)}`, 3, 123_456_789_012),
      snapshot('moby/3/moby-active-x', 2, 999),
      snapshot(`k8s.io/4/${chain(4)}`, 3, 10),
      snapshot(`moby/5/${chain(5)}`, 3, 0),
    ];
    const expected = new Map([
      [chain(1), 4096],
      [chain(2), 123_456_789_012],
      [chain(5), 0],
    ]);
    expect(committedSizes(database(snaps), 'moby')).toEqual(expected);
    expect(committedSizes(database(snaps, { split: true }), 'moby')).toEqual(expected);
    expect(committedSizes(database(snaps), 'k8s.io')).toEqual(new Map([[chain(4), 10]]));
  });

  it('leaves out a name committed twice (removed and made again): which is current is not known here', () => {
    const snaps = [snapshot(`moby/1/${chain(1)}`, 3, 5), snapshot(`moby/9/${chain(1)}`, 3, 6)];
    expect(committedSizes(database(snaps), 'moby')).toEqual(new Map());
  });

  it('takes the newer valid meta page, and the other when one is torn', () => {
    const db = database([snapshot(`moby/1/${chain(1)}`, 3, 5)]);
    // Meta 1 (older) points at a page that is not a bucket; meta 0 (newer) is right.
    meta(1, 2, 3).copy(db, PAGE);
    expect(committedSizes(db, 'moby').get(chain(1))).toBe(5);
    // Meta 0 torn (its checksum no longer matches): meta 1 is taken, and its root is no bucket page.
    db[16 + 20] ^= 0xff;
    expect(() => committedSizes(db, 'moby')).toThrow('page of kind 16 inside a bucket');
  });

  it('ends the read on damage: no meta, a page outside the file or not itself, an element past its page', () => {
    const good = database([snapshot(`moby/1/${chain(1)}`, 3, 5)]);
    expect(() => committedSizes(Buffer.alloc(2 * PAGE), 'moby')).toThrow('no valid meta page');
    const outside = Buffer.from(good);
    meta(0, 400, 9).copy(outside, 0);
    expect(() => committedSizes(outside, 'moby')).toThrow('page 400 is outside the file');
    const notItself = Buffer.from(good);
    notItself.writeBigUInt64LE(77n, 4 * PAGE);
    expect(() => committedSizes(notItself, 'moby')).toThrow('page 4 is not itself');
    const past = Buffer.from(good);
    past.writeUInt32LE(PAGE * 2, 4 * PAGE + 16 + 12);
    expect(() => committedSizes(past, 'moby')).toThrow('an element runs past its page');
    const runsPast = Buffer.from(good);
    runsPast.writeUInt32LE(5, 4 * PAGE + 12);
    expect(() => committedSizes(runsPast, 'moby')).toThrow('page 4 runs past the file');
    const huge = Buffer.from(good);
    huge.writeUInt32LE(0xffffffff, 4 * PAGE + 12);
    expect(() => committedSizes(huge, 'moby')).toThrow('page 4 has 4294967295 overflow pages');
    const loop = Buffer.from(good);
    branch(4, [{ key: 'a', page: 4 }]).copy(loop, 4 * PAGE);
    expect(() => committedSizes(loop, 'moby')).toThrow('too many pages');
  });

  it('reads only the pages it needs, however large the file', () => {
    const db = Buffer.concat([database([snapshot(`moby/1/${chain(1)}`, 3, 5)]), Buffer.alloc(1000 * PAGE)]);
    let bytesRead = 0;
    const counted: Source = {
      read(offset, length) {
        bytesRead += length;
        return bufferSource(db).read(offset, length);
      },
    };
    expect(committedSizes(counted, 'moby')).toEqual(new Map([[chain(1), 5]]));
    // Both meta pages' heads twice (at the start and the end), the root page and the snapshots' page.
    expect(bytesRead).toBe(4 * (16 + 64) + 2 * PAGE);
  });

  it('reads a page with its overflow pages: a leaf longer than one page', () => {
    const snaps = Array.from({ length: 80 }, (_, i) => snapshot(`moby/${i}/${chain(i)}`, 3, i * 10));
    const big = leaf(4, snaps);
    const overflow = Math.ceil(big.length / PAGE) - 1;
    expect(overflow).toBeGreaterThan(0);
    big.writeUInt32LE(overflow, 12);
    const db = Buffer.concat([database([]), Buffer.alloc(overflow * PAGE)]);
    big.copy(db, 4 * PAGE);
    expect(committedSizes(db, 'moby')).toEqual(new Map(snaps.map((_, i) => [chain(i), i * 10])));
  });

  it('a read a commit overtook is taken again; one overtaken every time ends the read', () => {
    /** The file, where a commit (a newer meta page 1, the same root) lands at each of the first `commits` reads of the root page. */
    const committing = (commits: number): Source => {
      const db = database([snapshot(`moby/1/${chain(1)}`, 3, 5)]);
      let txid = 4;
      let made = 0;
      return {
        read(offset, length) {
          if (offset === 3 * PAGE && made < commits) {
            made++;
            meta(1, 3, ++txid).copy(db, PAGE);
          }
          return bufferSource(db).read(offset, length);
        },
      };
    };
    expect(() => committedSizes(committing(1), 'moby')).toThrow('a newer transaction committed meanwhile');
    expect(readSettled(committing(1), (source) => committedSizes(source, 'moby'))).toEqual(
      new Map([[chain(1), 5]]),
    );
    expect(readSettled(committing(READ_ATTEMPTS - 1), (source) => committedSizes(source, 'moby')).size).toBe(
      1,
    );
    expect(() => readSettled(committing(READ_ATTEMPTS), (source) => committedSizes(source, 'moby'))).toThrow(
      'a newer transaction committed meanwhile',
    );
  });

  it('signed varints as Go writes them', () => {
    for (const n of [0, 1, -1, 63, 64, -65, 4096, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER]) {
      expect(readVarint(varint(n))).toBe(n);
    }
    expect(readVarint(Buffer.from([0x80, 0x80]))).toBeUndefined();
  });

  it('readSnapshotSizes: the driver’s file beside the content store; none when absent, damaged or not a driver name', async () => {
    const root = mkdtempSync('/tmp/sdp-snapshots-');
    try {
      const content = join(root, 'io.containerd.content.v1.content');
      mkdirSync(join(root, 'io.containerd.snapshotter.v1.overlayfs'), { recursive: true });
      writeFileSync(
        join(root, 'io.containerd.snapshotter.v1.overlayfs', 'metadata.db'),
        database([snapshot(`moby/1/${chain(1)}`, 3, 5)]),
      );
      expect(await readSnapshotSizes(content, 'overlayfs')).toEqual(new Map([[chain(1), 5]]));
      expect(await readSnapshotSizes(content, 'native')).toBeUndefined();
      expect(await readSnapshotSizes(content, '../x')).toBeUndefined();
      writeFileSync(join(root, 'io.containerd.snapshotter.v1.overlayfs', 'metadata.db'), 'not bolt');
      expect(await readSnapshotSizes(content, 'overlayfs')).toBeUndefined();
      // A FIFO at the name: no read that waits for a writer, and nothing read.
      rmSync(join(root, 'io.containerd.snapshotter.v1.overlayfs', 'metadata.db'));
      execFileSync('mkfifo', [join(root, 'io.containerd.snapshotter.v1.overlayfs', 'metadata.db')]);
      expect(await readSnapshotSizes(content, 'overlayfs')).toBeUndefined();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

/** Go's time.MarshalBinary (version 1, UTC): seconds since year 1, nanoseconds, zone offset -1 (UTC). */
function goTime(ms: number): Buffer {
  const b = Buffer.alloc(15);
  b[0] = 1;
  b.writeBigInt64BE(BigInt(Math.floor(ms / 1000)) + 62_135_596_800n, 1);
  b.writeInt32BE((ms % 1000) * 1e6 + 789, 9);
  b.writeInt16BE(-1, 13);
  return b;
}

/** containerd's metadata database with `records` in the namespace `moby` (inline buckets throughout). */
function metaDb(records: { name: string; digest: string; updatedMs: number }[], ns = 'moby'): Buffer {
  const image = (r: (typeof records)[number]): Item => ({
    key: r.name,
    bucket: {
      items: [
        { key: 'createdat', value: goTime(0) },
        { key: 'target', bucket: { items: [{ key: 'digest', value: Buffer.from(r.digest) }] } },
        { key: 'updatedat', value: goTime(r.updatedMs) },
      ],
    },
  });
  const v1: Item = {
    key: 'v1',
    bucket: {
      items: [{ key: ns, bucket: { items: [{ key: 'images', bucket: { items: records.map(image) } }] } }],
    },
  };
  return file(
    new Map([
      [0, meta(0, 3, 4)],
      [1, meta(1, 3, 3)],
      [2, header(2, 0x10, 0)],
      [3, leaf(3, [v1])],
    ]),
  );
}

describe("containerd's image records", () => {
  it("each target's last tag time: the latest update of the records naming it (a dangling one too)", () => {
    const db = metaDb([
      { name: 'docker.io/library/app:1', digest: chain(1), updatedMs: 1_700_000_000_123 },
      { name: 'docker.io/library/app:latest', digest: chain(1), updatedMs: 1_700_000_500_456 },
      { name: `moby-dangling@${chain(2)}`, digest: chain(2), updatedMs: 1_600_000_000_000 },
    ]);
    expect(targetTagTimes(db, 'moby')).toEqual(
      new Map([
        [chain(1), 1_700_000_500_456],
        [chain(2), 1_600_000_000_000],
      ]),
    );
    expect(targetTagTimes(db, 'k8s.io')).toEqual(new Map());
  });

  it('a record without its target or time ends the read; Go times of both versions, nothing else', () => {
    const db = metaDb([{ name: 'a', digest: chain(1), updatedMs: 5 }]);
    const damaged = Buffer.from(db);
    damaged.write('updatedzz', damaged.indexOf('updatedat'), 'latin1');
    expect(() => targetTagTimes(damaged, 'moby')).toThrow('image record a unread');
    const v2 = Buffer.concat([goTime(1_234_567), Buffer.from([0])]);
    v2[0] = 2;
    expect(goTimeMs(v2)).toBe(1_234_567);
    expect(goTimeMs(goTime(-5000))).toBe(-5000);
    expect(goTimeMs(Buffer.from([1, 2, 3]))).toBeUndefined();
    expect(goTimeMs(undefined)).toBeUndefined();
  });

  it('readTagTimes: containerd’s meta.db beside the content store; none when it is absent', async () => {
    const root = mkdtempSync('/tmp/sdp-metadb-');
    try {
      const content = join(root, 'io.containerd.content.v1.content');
      expect(await readTagTimes(content)).toBeUndefined();
      mkdirSync(join(root, 'io.containerd.metadata.v1.bolt'));
      writeFileSync(
        join(root, 'io.containerd.metadata.v1.bolt', 'meta.db'),
        metaDb([{ name: 'a', digest: chain(3), updatedMs: 77_000 }]),
      );
      expect(await readTagTimes(content)).toEqual(new Map([[chain(3), 77_000]]));
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
