// V8's worker threads (Node's platform pool: garbage collection helpers, concurrent marking and
// sweeping, optimising compiles) switched to SCHED_BATCH. Linux's fair scheduler lets a thread
// that wakes preempt the one running on its CPU. V8's workers wake whenever the daemon's main
// thread posts a collection or compile task, and one of them then took the main thread's CPU
// for 1-4 ms while an RPC's answer was half written, or the CPU of the client the answer had
// just woken, with the other core idle. A scheduler trace of the whole machine through one run
// of bench:ops (issue 14) counted 113 such preemptions of the daemon's main thread and 15 of the
// client's; these were the slow status and list calls. A SCHED_BATCH thread never preempts on
// waking (the same run: 5, each at a tick, when the main thread's share was spent), and keeps
// its weight: it gets the same share of a busy CPU as before, so the main thread, which at times
// waits for a worker's part of a collection, waits no longer than it did. A higher nice value
// would shrink that share and lengthen that wait on a loaded node. Measured with 4 busy loops on
// the 2 cores and 30 s of calls: collection pauses p99 / max 6 / 16 ms as SCHED_BATCH, 36 / 73 ms
// at nice 10 and 611 / 745 ms at nice 19 (a scavenge waits at a safepoint for a starved worker).
// Of those, only nice 19 shortened the p95 of bench:ops' in-memory calls; nice 5 did not.
//
// Node-API offers no way to reach those threads, and nothing names them: they are reached through
// the platform, by giving each one a task that switches the thread running it. A task holds its
// thread until the tasks have stopped starting, so that no thread takes two while another is
// left without one. The platform's count is not exact (Node 20 counts its delayed-task thread,
// which runs no tasks, among the workers), so the tasks are not waited for by number alone: the
// switch is over once the tasks have stopped starting for a few milliseconds.
//
// Symbols: node::GetCurrentEnvironment, node::GetMultiIsolatePlatform and v8::Isolate::GetCurrent
// are the node binary's, operator new and delete those of the C++ library it loads, all bound
// when the addon loads.
#include <node.h>
#include <v8.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "v8-workers.h"

namespace {

constexpr int kMaxWorkers = 256;

// One switch per process, whoever asks: a later call reports the first one's outcome.
struct Switch {
  std::atomic<bool> begun{false};
  std::atomic<bool> done{false};
  std::atomic<int> posted{0};
  std::atomic<int> arrived{0};
  std::atomic<int> error{0};
  // The ids of the threads switched, by task: a task left over once the caller stops waiting
  // runs on a thread already switched, so threads are counted by id.
  std::atomic<pid_t> switched[kMaxWorkers];
  // What the first call returned, for later ones.
  std::atomic<int> outcome{0};
};
Switch the_switch;

// At the daemon's start the workers are idle and take their tasks within microseconds; a worker
// busy for longer than the quiet spell is left as it was, and the count says so.
constexpr long kFirstTaskWaitUs = 1000 * 1000;
constexpr long kQuietUs = 5 * 1000;
constexpr long kStepUs = 100;

void sleep_step() {
  struct timespec ts = {0, kStepUs * 1000};
  // An interrupted sleep only makes the next check come sooner.
  (void)nanosleep(&ts, nullptr);
}

// Waits until every posted task has started, or none has started for kQuietUs after the first
// one did, or no task has started at all in kFirstTaskWaitUs.
void wait_until_settled() {
  int seen = the_switch.arrived.load();
  long since_change = 0;
  for (long waited = 0; waited < kFirstTaskWaitUs; waited += kStepUs) {
    const int now = the_switch.arrived.load();
    if (now >= the_switch.posted.load()) return;
    if (now != seen) {
      seen = now;
      since_change = 0;
    } else if (now > 0 && since_change >= kQuietUs) {
      return;
    }
    sleep_step();
    since_change += kStepUs;
  }
}

// How many threads have been switched.
int distinct_switched() {
  int count = 0;
  for (int i = 0; i < kMaxWorkers; i++) {
    const pid_t tid = the_switch.switched[i].load();
    if (tid == 0) continue;
    bool seen = false;
    for (int j = 0; j < i && !seen; j++) seen = the_switch.switched[j].load() == tid;
    if (!seen) count++;
  }
  return count;
}

class SwitchToBatch final : public v8::Task {
 public:
  void Run() override {
    struct sched_param param = {};
    const int slot = the_switch.arrived.fetch_add(1);
    // pid 0: the calling thread (Linux keeps a policy per thread).
    if (sched_setscheduler(0, SCHED_BATCH, &param) != 0)
      the_switch.error.store(errno);
    else if (slot < kMaxWorkers)
      the_switch.switched[slot].store(gettid());
    if (!the_switch.done.load()) wait_until_settled();
  }
};

}  // namespace

extern "C" int crib_v8_workers_to_batch(void) {
  if (the_switch.begun.exchange(true)) {
    while (!the_switch.done.load()) sleep_step();
    return the_switch.outcome.load();
  }
  int outcome = -ENOSYS;
  v8::Isolate *isolate = v8::Isolate::GetCurrent();
  node::Environment *env = isolate == nullptr ? nullptr : node::GetCurrentEnvironment(isolate->GetCurrentContext());
  node::MultiIsolatePlatform *platform = env == nullptr ? nullptr : node::GetMultiIsolatePlatform(env);
  if (isolate == nullptr) {
    outcome = -EINVAL;
  } else if (platform != nullptr) {
    int n = platform->NumberOfWorkerThreads();
    if (n > kMaxWorkers) n = kMaxWorkers;
    the_switch.posted.store(n);
    for (int i = 0; i < n; i++) platform->CallOnWorkerThread(std::make_unique<SwitchToBatch>());
    wait_until_settled();
    if (the_switch.error.load() != 0) outcome = -the_switch.error.load();
    else if (n > 0 && the_switch.arrived.load() == 0) outcome = -ETIMEDOUT;
    else outcome = distinct_switched();
  }
  the_switch.outcome.store(outcome);
  the_switch.done.store(true);
  return outcome;
}
