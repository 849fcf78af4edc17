// Maps and sets that keep only their most recently used entries. For caches keyed by what comes
// from outside (a registry host, a repository an image names, an image's chain id): a node that
// pulls from ever more of them, or a pod spec naming new ones on purpose, must not grow the
// daemon's memory with them. A Map and a Set iterate in insertion order, so the first key is the
// least recently used.

/** Set `key` to `value` as `map`'s most recent entry, dropping the least recent beyond `max`. */
export function setRecent<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  for (const oldest of map.keys()) {
    if (map.size <= max) break;
    map.delete(oldest);
  }
}

/** Add `key` as `set`'s most recent member, dropping the least recent beyond `max`. */
export function addRecent<K>(set: Set<K>, key: K, max: number): void {
  set.delete(key);
  set.add(key);
  for (const oldest of set) {
    if (set.size <= max) break;
    set.delete(oldest);
  }
}
