// Byte chunks whose buffer holds no other view anyone reads: such a chunk's whole buffer may move
// to another thread (postMessage's transfer list) without a copy. A chunk read into a buffer of
// its own and spanning all of it is one by construction; a producer that hands out one view per
// buffer, with bytes around it nobody reads (a response's framing), marks its chunks here.
const marked = new WeakSet<ArrayBufferLike>();

/** Record that `view` is the only view of its buffer anyone will read; returns it. */
export function markSoleView<T extends Uint8Array>(view: T): T {
  marked.add(view.buffer);
  return view;
}

/** Whether `view`'s buffer may move with it, taking no bytes anyone else reads. */
export function isSoleView(view: Uint8Array): boolean {
  if (!(view.buffer instanceof ArrayBuffer)) return false;
  return (view.byteOffset === 0 && view.byteLength === view.buffer.byteLength) || marked.has(view.buffer);
}
