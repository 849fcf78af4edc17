/* linux.resources on cgroup v2: OCI's v1-shaped values translated to the unified files
 * (cpu.weight, cpu.max, memory.max/swap.max/low, io.weight...), then `unified` written verbatim
 * so an explicit v2 value always wins over a translated one. */
#include "cgroup-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* -1 (and any negative) is "no limit", spelled "max" on v2. */
static int write_max(const char *dir, const char *file, long long v, crib_err *err) {
  if (v < 0) return crib_cgi_write(dir, file, "max", err);
  return crib_cgi_write_ll(dir, file, v, err);
}

static bool in_unified(json_t *res, const char *file) {
  return json_object_get(json_object_get(res, "unified"), file) != NULL;
}

/* OCI swap is memory+swap (the v1 memsw meaning); memory.swap.max is swap alone. */
static int swap_v2(long long limit, bool has_limit, long long swap, long long *out,
                   crib_err *err) {
  if (swap == -1) {
    *out = -1;
    return 0;
  }
  if (!has_limit || limit == -1)
    return crib_fail(err, 0, "linux.resources.memory.swap %lld: a swap limit needs a memory limit",
                     swap);
  if (swap < limit)
    return crib_fail(err, 0, "linux.resources.memory.swap %lld: must be >= memory.limit %lld "
                             "(it counts memory+swap)", swap, limit);
  *out = swap - limit;
  return 0;
}

static int apply_memory(const char *dir, json_t *mem, crib_err *err) {
  if (mem == NULL) return 0;
  long long limit = 0, swap = 0, reservation = 0, swappiness;
  bool has_limit = crib_cgi_int(mem, "limit", &limit) && limit != 0;
  bool has_swap = crib_cgi_int(mem, "swap", &swap) && swap != 0;
  bool has_res = crib_cgi_int(mem, "reservation", &reservation) && reservation != 0;
  /* As on v1: unlimited memory with swap unspecified lifts the swap limit as well. */
  if (has_limit && limit == -1 && !has_swap) {
    has_swap = true;
    swap = -1;
  }
  long long swap_max = 0;
  if (has_swap && swap_v2(limit, has_limit, swap, &swap_max, err) < 0) return -1;
  if (has_swap && !crib_cgi_exists(dir, "memory.swap.max")) {
    if (swap_max != -1)
      crib_cgi_warn("swap limit not set: %s/memory.swap.max is missing (memory controller not "
                    "enabled, or kernel without swap accounting)", dir);
    has_swap = false;
  }
  /* No ordering constraint between the two on v2 (unlike v1's memsw >= limit). */
  if (has_limit && write_max(dir, "memory.max", limit, err) < 0) return -1;
  if (has_swap && write_max(dir, "memory.swap.max", swap_max, err) < 0) return -1;
  if (has_res && write_max(dir, "memory.low", reservation, err) < 0) return -1;
  if (crib_cgi_int(mem, "swappiness", &swappiness))
    crib_cgi_warn("memory swappiness %lld ignored: cgroup v2 has no per-cgroup swappiness",
                  swappiness);
  if (json_is_true(json_object_get(mem, "disableOOMKiller")))
    crib_cgi_warn("disableOOMKiller ignored: cgroup v2 cannot disable the OOM killer");
  return 0;
}

/* cpu.shares (2..262144, default 1024) onto cpu.weight (1..10000, default 100): the linear map
 * runc, crun and systemd share, so a pod gets the same weight whichever runtime ran it. */
static long long shares_to_weight(long long shares) {
  if (shares < 2) shares = 2;
  if (shares > 262144) shares = 262144;
  return 1 + ((shares - 2) * 9999) / 262142;
}

static int apply_cpu(const char *dir, json_t *res, json_t *cpu, crib_err *err) {
  if (cpu == NULL) return 0;
  long long shares = 0, quota = 0, period = 0, burst, idle;
  bool has_shares = crib_cgi_int(cpu, "shares", &shares) && shares != 0;
  bool has_quota = crib_cgi_int(cpu, "quota", &quota) && quota != 0;
  bool has_period = crib_cgi_int(cpu, "period", &period) && period > 0;
  if (has_shares && !in_unified(res, "cpu.weight") &&
      crib_cgi_write_ll(dir, "cpu.weight", shares_to_weight(shares), err) < 0)
    return -1;
  if (has_quota || has_period) {
    /* cpu.max holds both; the half not being changed keeps its current value. */
    char current[64] = "", cur_quota[32] = "max";
    long long cur_period = 100000;
    crib_err ignored;
    if (crib_cgi_read(dir, "cpu.max", current, sizeof current, &ignored) == 0 && current[0]) {
      char q[32];
      long long p;
      if (sscanf(current, "%31s %lld", q, &p) == 2) {
        snprintf(cur_quota, sizeof cur_quota, "%s", q);
        cur_period = p;
      }
    }
    char value[80];
    if (has_quota && quota > 0) snprintf(value, sizeof value, "%lld", quota);
    else if (has_quota) snprintf(value, sizeof value, "max");
    else snprintf(value, sizeof value, "%s", cur_quota);
    size_t used = strlen(value);
    snprintf(value + used, sizeof value - used, " %lld", has_period ? period : cur_period);
    if (crib_cgi_write(dir, "cpu.max", value, err) < 0) return -1;
  }
  if (crib_cgi_int(cpu, "burst", &burst) && crib_cgi_write_ll(dir, "cpu.max.burst", burst, err) < 0)
    return -1;
  if (crib_cgi_int(cpu, "idle", &idle) && crib_cgi_write_ll(dir, "cpu.idle", idle, err) < 0) return -1;
  long long rt;
  if ((crib_cgi_int(cpu, "realtimeRuntime", &rt) && rt != 0) ||
      (crib_cgi_int(cpu, "realtimePeriod", &rt) && rt != 0))
    return crib_fail(err, 0, "linux.resources.cpu.realtimeRuntime/realtimePeriod: not "
                             "supported on cgroup v2");
  const char *cpus = crib_cgi_str(cpu, "cpus"), *mems = crib_cgi_str(cpu, "mems");
  if (cpus != NULL && *cpus != '\0' && crib_cgi_write(dir, "cpuset.cpus", cpus, err) < 0)
    return -1;
  if (mems != NULL && *mems != '\0' && crib_cgi_write(dir, "cpuset.mems", mems, err) < 0)
    return -1;
  return 0;
}

/* blkio.weight's 10..1000 onto io.weight's 1..10000. io.bfq.weight keeps the 1..1000 scale of
 * blkio and takes the value as is. */
static long long blkio_to_io_weight(long long weight) {
  if (weight < 10) weight = 10;
  if (weight > 1000) weight = 1000;
  return 1 + (weight - 10) * 9999 / 990;
}

static int apply_io(const char *dir, json_t *blkio, crib_err *err) {
  if (blkio == NULL) return 0;
  bool bfq = crib_cgi_exists(dir, "io.bfq.weight");
  const char *weight_file = bfq ? "io.bfq.weight" : "io.weight";
  long long weight;
  if (crib_cgi_int(blkio, "weight", &weight) && weight != 0 &&
      crib_cgi_write_ll(dir, weight_file, bfq ? weight : blkio_to_io_weight(weight), err) < 0)
    return -1;
  size_t i;
  json_t *entry;
  json_array_foreach(json_object_get(blkio, "weightDevice"), i, entry) {
    long long major = 0, minor = 0, w;
    if (!crib_cgi_int(entry, "weight", &w)) continue;
    crib_cgi_int(entry, "major", &major);
    crib_cgi_int(entry, "minor", &minor);
    char line[96];
    snprintf(line, sizeof line, "%lld:%lld %lld", major, minor, bfq ? w : blkio_to_io_weight(w));
    if (crib_cgi_write(dir, weight_file, line, err) < 0) return -1;
  }
  static const char *const keys[] = {"throttleReadBpsDevice", "throttleWriteBpsDevice",
                                     "throttleReadIOPSDevice", "throttleWriteIOPSDevice"};
  static const char *const names[] = {"rbps", "wbps", "riops", "wiops"};
  for (size_t k = 0; k < 4; k++) {
    json_array_foreach(json_object_get(blkio, keys[k]), i, entry) {
      long long major = 0, minor = 0, rate = 0;
      crib_cgi_int(entry, "major", &major);
      crib_cgi_int(entry, "minor", &minor);
      crib_cgi_int(entry, "rate", &rate);
      char line[96];
      /* rate 0 clears the limit, as in v1. */
      if (rate > 0) snprintf(line, sizeof line, "%lld:%lld %s=%lld", major, minor, names[k], rate);
      else snprintf(line, sizeof line, "%lld:%lld %s=max", major, minor, names[k]);
      if (crib_cgi_write(dir, "io.max", line, err) < 0) return -1;
    }
  }
  return 0;
}

static int apply_unified(const char *dir, json_t *unified, crib_err *err) {
  const char *key;
  json_t *value;
  json_object_foreach(unified, key, value) {
    if (crib_cgi_write(dir, key, json_string_value(value), err) < 0) return -1;
  }
  return 0;
}

int crib_cgi_apply_v2(const crib_cgroup *cg, json_t *res, crib_err *err) {
  char dir[PATH_MAX];
  if (!CRIB_CGI_FMT(dir, "%s%s", cg->root, cg->path))
    return crib_fail(err, ENAMETOOLONG, "cgroup path %s%s", cg->root, cg->path);
  if (apply_memory(dir, json_object_get(res, "memory"), err) < 0) return -1;
  if (apply_cpu(dir, res, json_object_get(res, "cpu"), err) < 0) return -1;
  long long pids;
  if (crib_cgi_int(json_object_get(res, "pids"), "limit", &pids) &&
      write_max(dir, "pids.max", pids <= 0 ? -1 : pids, err) < 0)
    return -1;
  if (crib_cgi_write_hugetlb(dir, json_object_get(res, "hugepageLimits"), "max", err) < 0) return -1;
  if (apply_io(dir, json_object_get(res, "blockIO"), err) < 0) return -1;
  json_t *net = json_object_get(res, "network");
  if (json_object_get(net, "classID") != NULL || json_array_size(json_object_get(net, "priorities")))
    crib_cgi_warn("linux.resources.network ignored: net_cls/net_prio do not exist on cgroup v2");
  json_t *devices = json_object_get(res, "devices");
  if (devices != NULL && crib_cgi_devices_v2(dir, devices, err) < 0) return -1;
  return apply_unified(dir, json_object_get(res, "unified"), err);
}
