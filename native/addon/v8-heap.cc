// The daemon's two calls into V8's C++ API: Node-API has no way to ask V8 to shrink its heap.
// MemoryPressureNotification(kModerate) starts an incremental collection that compacts with
// memory as its goal and hands the pages it empties back to the kernel, the collection V8's own
// memory reducer runs only 8 s or more after the last full one, and not at all when nothing asked
// for a full one (issue 14: a daemon idle after a burst of pods kept ~10 MiB of garbage and its
// pages). Marking proceeds in V8's tasks on the event loop and its background threads, so the
// call itself returns at once. LowMemoryNotification runs full collections before it returns,
// then shrinks the young generation and unmaps the free pages V8 pools for reuse, which the
// incremental one keeps: the daemon calls it only after a long quiet spell (memory-trim.ts).
//
// Symbols: Isolate::GetCurrent, MemoryPressureNotification and LowMemoryNotification are the
// node binary's, bound when the addon loads, like the Node-API ones. All three have kept their
// signatures since V8 5.
#include <v8.h>

#include "v8-heap.h"

extern "C" void crib_heap_memory_pressure(void) {
  v8::Isolate *isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kModerate);
}

extern "C" void crib_heap_low_memory(void) {
  v8::Isolate *isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->LowMemoryNotification();
}
