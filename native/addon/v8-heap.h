/* The addon's calls into V8's C++ API (v8-heap.cc). */
#ifndef CRIB_V8_HEAP_H
#define CRIB_V8_HEAP_H

#ifdef __cplusplus
extern "C" {
#endif

/* Asks V8 for an incremental collection that shrinks the heap, on the calling thread's isolate. */
void crib_heap_memory_pressure(void);

/* Full collections, done before it returns, until V8 has given back every page it can. */
void crib_heap_low_memory(void);

#ifdef __cplusplus
}
#endif

#endif
