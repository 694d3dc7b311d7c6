// Small helpers over built-in collections, shared by every layer.

/** Appends `value` to the list under `key`, creating the list on first use. */
export function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** The sum of `values`. */
export function sum(values: readonly number[]): number {
  let total = 0;
  for (const value of values) total += value;
  return total;
}

/** The sum of `of(item)` over `items`. */
export function sumOf<T>(items: readonly T[], of: (item: T) => number): number {
  let total = 0;
  for (const item of items) total += of(item);
  return total;
}

/** Whether a Docker API version (`1.41`) is at least `major.minor`. */
export function apiAtLeast(version: string, major: number, minor: number): boolean {
  const [m, n] = version.split('.').map(Number);
  return m > major || (m === major && n >= minor);
}
