// The one call into V8's C++ API that the daemon makes: Node-API has no way to ask V8 to shrink
// its heap. MemoryPressureNotification(kModerate) starts an incremental collection that compacts
// with memory as its goal and hands the pages it empties back to the kernel, the collection V8's
// own memory reducer runs only 8 s or more after the last full one, and not at all when nothing
// asked for a full one (issue 14: a daemon idle after a burst of pods kept ~10 MiB of garbage and
// its pages). Marking proceeds in V8's tasks on the event loop and its background threads, so the
// call itself returns at once.
//
// Symbols: Isolate::GetCurrent and Isolate::MemoryPressureNotification are the node binary's,
// bound when the addon loads, like the Node-API ones. Both have kept their signatures since V8 5.
#include <v8.h>

#include "v8-heap.h"

extern "C" void crib_heap_memory_pressure(void) {
  v8::Isolate *isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->MemoryPressureNotification(v8::MemoryPressureLevel::kModerate);
}
