// Bounding text that may echo client input. A CRI client controls image names, ids, paths and
// annotations of up to 16 MiB; an error message or log line that quotes one whole (a 1 MiB image
// name once wrote a 15 MB log line and stalled the client reading the status) is a cheap way to
// make the daemon and everyone downstream of it do a lot of work. The RPC wrapper (status
// messages) and the logger (every string field) cut what they pass on with these helpers.

/** What the RPC wrapper and the logger keep of one message or string field. */
export const MAX_ECHO_BYTES = 1024;

/** Nested values walked when bounding a log object; deeper ones are summarised. */
const MAX_DEPTH = 6;
/** Array items and object keys kept per level when bounding a log object. */
const MAX_ITEMS = 64;

/**
 * `text` if it fits in `maxBytes` (UTF-8), else its head and a marker with the full size:
 * "aaaa… (1048576 bytes)". The result is at most maxBytes plus the marker.
 */
export function truncateText(text: string, maxBytes = MAX_ECHO_BYTES): string {
  // Cheap test first: a string of n UTF-16 units is at most 3n UTF-8 bytes.
  if (text.length * 3 <= maxBytes) return text;
  const bytes = Buffer.byteLength(text);
  if (bytes <= maxBytes) return text;
  // Cut on the byte budget, then drop a code point the cut may have split (U+FFFD at the end).
  const head = Buffer.from(text.slice(0, maxBytes)).subarray(0, maxBytes).toString('utf8').replace(/\uFFFD$/, '');
  return `${head}… (${bytes} bytes)`;
}

/**
 * A copy of `value` in which every string is cut by truncateText and long arrays, wide objects
 * and deep nesting are summarised, so that serialising it cannot produce a huge line. Errors,
 * Buffers and other class instances are left as they are (the logger's serializers own them).
 */
export function boundStrings(value: unknown, maxBytes = MAX_ECHO_BYTES, depth = 0): unknown {
  if (typeof value === 'string') return truncateText(value, maxBytes);
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    if (depth >= MAX_DEPTH) return `[array of ${value.length}]`;
    const kept = value.slice(0, MAX_ITEMS).map((v) => boundStrings(v, maxBytes, depth + 1));
    if (value.length > MAX_ITEMS) kept.push(`… (${value.length - MAX_ITEMS} more items)`);
    return kept;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return value;
  if (depth >= MAX_DEPTH) return '[object]';
  const out: Record<string, unknown> = {};
  let n = 0;
  for (const [k, v] of Object.entries(value)) {
    if (n++ === MAX_ITEMS) {
      out['…'] = `${Object.keys(value).length - MAX_ITEMS} more keys`;
      break;
    }
    out[truncateText(k, maxBytes)] = boundStrings(v, maxBytes, depth + 1);
  }
  return out;
}
