/* linux.resources on cgroup v1: one hierarchy per controller, values mostly written as given
 * (-1 = unlimited is understood by the v1 files themselves). */
#include "cgroup-internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* v1 keeps memory.limit_in_bytes <= memory.memsw.limit_in_bytes at every moment, so raising the
 * limit above the current memsw must write memsw first, and lowering memsw below the current
 * limit must write the limit first. */
static int apply_memory(const crib_cgroup *cg, json_t *mem, crib_err *err) {
  if (mem == NULL) return 0;
  long long limit = 0, swap = 0, reservation = 0, swappiness = 0;
  bool has_limit = crib_cgi_int(mem, "limit", &limit) && limit != 0;
  bool has_swap = crib_cgi_int(mem, "swap", &swap) && swap != 0;
  bool has_res = crib_cgi_int(mem, "reservation", &reservation) && reservation != 0;
  bool has_swappiness = crib_cgi_int(mem, "swappiness", &swappiness);
  json_t *oom = json_object_get(mem, "disableOOMKiller");
  if (!has_limit && !has_swap && !has_res && !has_swappiness && !json_is_boolean(oom)) return 0;

  char dir[PATH_MAX];
  if (crib_cgi_v1_dir(cg, "memory", dir, sizeof dir, err) < 0) return -1;
  bool has_memsw = crib_cgi_exists(dir, "memory.memsw.limit_in_bytes");
  /* An unlimited memory limit with swap unspecified means unlimited memory+swap too, otherwise
   * the old memsw would still cap the cgroup. */
  if (has_limit && limit == -1 && !has_swap && has_memsw) {
    has_swap = true;
    swap = -1;
  }
  if (has_swap && !has_memsw) {
    crib_cgi_warn("memory+swap limit %lld not set: %s/memory.memsw.limit_in_bytes is missing "
                  "(kernel without swap accounting)", swap, dir);
    has_swap = false;
  }
  if (has_swap && has_limit && swap != -1 && (limit == -1 || swap < limit))
    return crib_fail(err, 0, "linux.resources.memory.swap %lld: must be >= memory.limit %lld "
                             "(it counts memory+swap)", swap, limit);
  if (has_swap) {
    char cur[64];
    if (crib_cgi_read(dir, "memory.memsw.limit_in_bytes", cur, sizeof cur, err) < 0) return -1;
    long long current_memsw = strtoll(cur, NULL, 10);
    long long new_limit = limit == -1 ? LLONG_MAX : limit;
    if (has_limit && new_limit > current_memsw) {
      if (crib_cgi_write_ll(dir, "memory.memsw.limit_in_bytes", swap, err) < 0) return -1;
      if (crib_cgi_write_ll(dir, "memory.limit_in_bytes", limit, err) < 0) return -1;
    } else {
      if (has_limit && crib_cgi_write_ll(dir, "memory.limit_in_bytes", limit, err) < 0) return -1;
      if (crib_cgi_write_ll(dir, "memory.memsw.limit_in_bytes", swap, err) < 0) return -1;
    }
  } else if (has_limit && crib_cgi_write_ll(dir, "memory.limit_in_bytes", limit, err) < 0) {
    return -1;
  }
  if (has_res && crib_cgi_write_ll(dir, "memory.soft_limit_in_bytes", reservation, err) < 0) return -1;
  if (has_swappiness && crib_cgi_write_ll(dir, "memory.swappiness", swappiness, err) < 0) return -1;
  if (json_is_boolean(oom) &&
      crib_cgi_write(dir, "memory.oom_control", json_is_true(oom) ? "1" : "0", err) < 0)
    return -1;
  return 0;
}

static int apply_cpu(const crib_cgroup *cg, json_t *cpu, crib_err *err) {
  if (cpu == NULL) return 0;
  long long shares = 0, quota = 0, period = 0, burst = 0, idle = 0, rt_runtime = 0, rt_period = 0;
  bool has_shares = crib_cgi_int(cpu, "shares", &shares) && shares != 0;
  bool has_quota = crib_cgi_int(cpu, "quota", &quota) && quota != 0;
  bool has_period = crib_cgi_int(cpu, "period", &period) && period != 0;
  bool has_burst = crib_cgi_int(cpu, "burst", &burst);
  bool has_idle = crib_cgi_int(cpu, "idle", &idle);
  bool has_rt_runtime = crib_cgi_int(cpu, "realtimeRuntime", &rt_runtime) && rt_runtime != 0;
  bool has_rt_period = crib_cgi_int(cpu, "realtimePeriod", &rt_period) && rt_period != 0;

  if (has_shares || has_quota || has_period || has_burst || has_idle || has_rt_runtime ||
      has_rt_period) {
    char dir[PATH_MAX];
    if (crib_cgi_v1_dir(cg, "cpu", dir, sizeof dir, err) < 0) return -1;
    if (has_shares && crib_cgi_write_ll(dir, "cpu.shares", shares, err) < 0) return -1;
    if (quota < 0) quota = -1;
    if (has_period) {
      /* The kernel checks quota/period against each other: a new period can be refused with
       * the old quota in place, in which case the quota goes first. */
      crib_err first;
      if (crib_cgi_write_ll(dir, "cpu.cfs_period_us", period, &first) < 0) {
        if (first.errnum != EINVAL || !has_quota) {
          *err = first;
          return -1;
        }
        if (crib_cgi_write_ll(dir, "cpu.cfs_quota_us", quota, err) < 0) return -1;
        if (crib_cgi_write_ll(dir, "cpu.cfs_period_us", period, err) < 0) return -1;
        has_quota = false;
      }
    }
    if (has_quota && crib_cgi_write_ll(dir, "cpu.cfs_quota_us", quota, err) < 0) return -1;
    if (has_burst && crib_cgi_write_ll(dir, "cpu.cfs_burst_us", burst, err) < 0) return -1;
    if (has_idle && crib_cgi_write_ll(dir, "cpu.idle", idle, err) < 0) return -1;
    if (has_rt_period && crib_cgi_write_ll(dir, "cpu.rt_period_us", rt_period, err) < 0) return -1;
    if (has_rt_runtime && crib_cgi_write_ll(dir, "cpu.rt_runtime_us", rt_runtime, err) < 0) return -1;
  }

  const char *cpus = crib_cgi_str(cpu, "cpus"), *mems = crib_cgi_str(cpu, "mems");
  if ((cpus != NULL && *cpus != '\0') || (mems != NULL && *mems != '\0')) {
    char dir[PATH_MAX];
    if (crib_cgi_v1_dir(cg, "cpuset", dir, sizeof dir, err) < 0) return -1;
    if (cpus != NULL && *cpus != '\0' && crib_cgi_write(dir, "cpuset.cpus", cpus, err) < 0)
      return -1;
    if (mems != NULL && *mems != '\0' && crib_cgi_write(dir, "cpuset.mems", mems, err) < 0)
      return -1;
  }
  return 0;
}

static int apply_pids(const crib_cgroup *cg, json_t *pids, crib_err *err) {
  long long limit;
  if (!crib_cgi_int(pids, "limit", &limit)) return 0;
  char dir[PATH_MAX];
  if (crib_cgi_v1_dir(cg, "pids", dir, sizeof dir, err) < 0) return -1;
  if (limit <= 0) return crib_cgi_write(dir, "pids.max", "max", err);
  return crib_cgi_write_ll(dir, "pids.max", limit, err);
}

static int apply_hugetlb(const crib_cgroup *cg, json_t *limits, crib_err *err) {
  if (json_array_size(limits) == 0) return 0;
  char dir[PATH_MAX];
  if (crib_cgi_v1_dir(cg, "hugetlb", dir, sizeof dir, err) < 0) return -1;
  return crib_cgi_write_hugetlb(dir, limits, "limit_in_bytes", err);
}

/* "major:minor <suffix>" lines into file, one write per device. */
static int write_device_lines(const char *dir, const char *file, json_t *list, const char *key,
                              crib_err *err) {
  size_t i;
  json_t *entry;
  json_array_foreach(list, i, entry) {
    long long major = 0, minor = 0, value;
    if (!crib_cgi_int(entry, key, &value)) continue;
    crib_cgi_int(entry, "major", &major);
    crib_cgi_int(entry, "minor", &minor);
    char line[96];
    snprintf(line, sizeof line, "%lld:%lld %lld", major, minor, value);
    if (crib_cgi_write(dir, file, line, err) < 0) return -1;
  }
  return 0;
}

static int apply_blkio(const crib_cgroup *cg, json_t *blkio, crib_err *err) {
  if (blkio == NULL || json_object_size(blkio) == 0) return 0;
  char dir[PATH_MAX];
  if (crib_cgi_v1_dir(cg, "blkio", dir, sizeof dir, err) < 0) return -1;
  /* CFQ kernels have blkio.weight; BFQ-only kernels (5.0+) have blkio.bfq.weight. */
  bool bfq = !crib_cgi_exists(dir, "blkio.weight") && crib_cgi_exists(dir, "blkio.bfq.weight");
  long long weight, leaf;
  if (crib_cgi_int(blkio, "weight", &weight) && weight != 0) {
    if (!bfq && !crib_cgi_exists(dir, "blkio.weight"))
      return crib_fail(err, ENOENT, "blkio weight %lld: %s has neither blkio.weight nor "
                                    "blkio.bfq.weight (no CFQ or BFQ I/O scheduler)", weight, dir);
    if (crib_cgi_write_ll(dir, bfq ? "blkio.bfq.weight" : "blkio.weight", weight, err) < 0) return -1;
  }
  if (crib_cgi_int(blkio, "leafWeight", &leaf) && leaf != 0 &&
      crib_cgi_write_ll(dir, "blkio.leaf_weight", leaf, err) < 0)
    return -1;
  json_t *wd = json_object_get(blkio, "weightDevice");
  if (write_device_lines(dir, bfq ? "blkio.bfq.weight_device" : "blkio.weight_device", wd,
                         "weight", err) < 0)
    return -1;
  if (write_device_lines(dir, "blkio.leaf_weight_device", wd, "leafWeight", err) < 0) return -1;
  static const char *const keys[] = {"throttleReadBpsDevice", "throttleWriteBpsDevice",
                                     "throttleReadIOPSDevice", "throttleWriteIOPSDevice"};
  static const char *const files[] = {"blkio.throttle.read_bps_device",
                                      "blkio.throttle.write_bps_device",
                                      "blkio.throttle.read_iops_device",
                                      "blkio.throttle.write_iops_device"};
  for (size_t i = 0; i < 4; i++)
    if (write_device_lines(dir, files[i], json_object_get(blkio, keys[i]), "rate", err) < 0)
      return -1;
  return 0;
}

/* Device rules in order, after denying everything: the OCI list is an ordered allow/deny list
 * over a default-deny base, which is exactly how the v1 devices files compose. */
static int apply_devices(const crib_cgroup *cg, json_t *devices, crib_err *err) {
  if (devices == NULL) return 0;
  char dir[PATH_MAX];
  if (crib_cgi_v1_dir(cg, "devices", dir, sizeof dir, err) < 0) return -1;
  if (crib_cgi_write(dir, "devices.deny", "a", err) < 0) return -1;
  size_t i;
  json_t *entry;
  json_array_foreach(devices, i, entry) {
    crib_cgi_device_rule rule;
    if (crib_cgi_device_rule_parse(entry, i, &rule, err) < 0) return -1;
    char line[64], major[24], minor[24];
    if (rule.type == 'a') {
      snprintf(line, sizeof line, "a");
    } else {
      if (rule.major < 0) snprintf(major, sizeof major, "*");
      else snprintf(major, sizeof major, "%lld", rule.major);
      if (rule.minor < 0) snprintf(minor, sizeof minor, "*");
      else snprintf(minor, sizeof minor, "%lld", rule.minor);
      snprintf(line, sizeof line, "%c %s:%s %s", rule.type, major, minor, rule.access);
    }
    if (crib_cgi_write(dir, rule.allow ? "devices.allow" : "devices.deny", line, err) < 0)
      return -1;
  }
  return 0;
}

static int apply_network(const crib_cgroup *cg, json_t *net, crib_err *err) {
  if (net == NULL) return 0;
  char dir[PATH_MAX];
  long long classid;
  if (crib_cgi_int(net, "classID", &classid)) {
    if (crib_cgi_v1_dir(cg, "net_cls", dir, sizeof dir, err) < 0) return -1;
    if (crib_cgi_write_ll(dir, "net_cls.classid", classid, err) < 0) return -1;
  }
  json_t *prios = json_object_get(net, "priorities");
  if (json_array_size(prios) == 0) return 0;
  if (crib_cgi_v1_dir(cg, "net_prio", dir, sizeof dir, err) < 0) return -1;
  size_t i;
  json_t *entry;
  json_array_foreach(prios, i, entry) {
    long long prio = 0;
    crib_cgi_int(entry, "priority", &prio);
    char line[128];
    snprintf(line, sizeof line, "%s %lld", crib_cgi_str(entry, "name"), prio);
    if (crib_cgi_write(dir, "net_prio.ifpriomap", line, err) < 0) return -1;
  }
  return 0;
}

int crib_cgi_apply_v1(const crib_cgroup *cg, json_t *res, crib_err *err) {
  if (json_object_size(json_object_get(res, "unified")) > 0)
    return crib_fail(err, 0, "linux.resources.unified: only valid on cgroup v2, this host uses v1");
  if (apply_memory(cg, json_object_get(res, "memory"), err) < 0) return -1;
  if (apply_cpu(cg, json_object_get(res, "cpu"), err) < 0) return -1;
  if (apply_pids(cg, json_object_get(res, "pids"), err) < 0) return -1;
  if (apply_hugetlb(cg, json_object_get(res, "hugepageLimits"), err) < 0) return -1;
  if (apply_blkio(cg, json_object_get(res, "blockIO"), err) < 0) return -1;
  if (apply_network(cg, json_object_get(res, "network"), err) < 0) return -1;
  /* Devices last, as runc does, so failures of the other writes compare one to one. */
  return apply_devices(cg, json_object_get(res, "devices"), err);
}
