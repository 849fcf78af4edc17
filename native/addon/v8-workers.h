/* V8's worker threads switched to SCHED_BATCH (v8-workers.cc). */
#ifndef CRIB_V8_WORKERS_H
#define CRIB_V8_WORKERS_H

#ifdef __cplusplus
extern "C" {
#endif

/* Switches each of the platform's worker threads to SCHED_BATCH, once per process: how many
 * were switched, or -errno (-ETIMEDOUT: no worker took its task within a second; -EINVAL: no
 * isolate on this thread; -ENOSYS: no Node platform). Waits for the workers, a few milliseconds
 * at an idle start. A later call reports the first one's outcome. */
int crib_v8_workers_to_batch(void);

#ifdef __cplusplus
}
#endif

#endif
