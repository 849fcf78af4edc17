#include "namespaces.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "procfs.h"
#include "spec.h"


static const struct {
  const char *type;
  const char *proc;
  int flag;
} ns_table[] = {
    {"pid", "pid", CLONE_NEWPID},         {"network", "net", CLONE_NEWNET},
    {"mount", "mnt", CLONE_NEWNS},        {"ipc", "ipc", CLONE_NEWIPC},
    {"uts", "uts", CLONE_NEWUTS},         {"user", "user", CLONE_NEWUSER},
    {"cgroup", "cgroup", CLONE_NEWCGROUP}, {"time", "time", CLONE_NEWTIME},
};

int crib_ns_flag(const char *type) {
  for (size_t i = 0; i < sizeof ns_table / sizeof ns_table[0]; i++)
    if (strcmp(ns_table[i].type, type) == 0) return ns_table[i].flag;
  return 0;
}

const char *crib_ns_proc_name(int flag) {
  for (size_t i = 0; i < sizeof ns_table / sizeof ns_table[0]; i++)
    if (ns_table[i].flag == flag) return ns_table[i].proc;
  return "?";
}

int crib_ns_plan_init(crib_ns_plan *p, json_t *spec, crib_err *err) {
  memset(p, 0, sizeof *p);
  json_t *list = json_object_get(json_object_get(spec, "linux"), "namespaces");
  size_t i;
  json_t *ns;
  int seen = 0;
  json_array_foreach(list, i, ns) {
    const char *type = crib_json_str(ns, "type");
    int flag = crib_ns_flag(type);
    if (!flag) {
      crib_ns_plan_close(p);
      return crib_fail(err, 0, "linux.namespaces[%zu]: unknown type `%s`", i, type);
    }
    if (seen & flag) {
      crib_ns_plan_close(p);
      return crib_fail(err, 0, "linux.namespaces: `%s` listed twice", type);
    }
    seen |= flag;
    const char *path = crib_json_str(ns, "path");
    if (!path || !*path) {
      p->new_flags |= flag;
      continue;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      crib_ns_plan_close(p);
      return crib_fail(err, e, "open %s namespace `%s`", type, path);
    }
    p->join_fd[p->n_join] = fd;
    p->join_flag[p->n_join] = flag;
    snprintf(p->join_path[p->n_join], sizeof p->join_path[0], "%s", path);
    p->n_join++;
  }
  return 0;
}

void crib_ns_plan_close(crib_ns_plan *p) {
  for (int i = 0; i < p->n_join; i++)
    if (p->join_fd[i] >= 0) close(p->join_fd[i]);
  p->n_join = 0;
}

int crib_ns_join(crib_ns_plan *p, int flags, crib_err *err) {
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < p->n_join; i++) {
      int f = p->join_flag[i];
      if (!(f & flags) || (pass == 0) == (f == CLONE_NEWUSER)) continue;
      if (setns(p->join_fd[i], f) < 0)
        return crib_fail(err, errno, "setns %s namespace `%s`", crib_ns_proc_name(f),
                         p->join_path[i]);
    }
  }
  return 0;
}

int crib_ns_enter_new_time(json_t *spec, int proc, crib_err *err) {
  if (unshare(CLONE_NEWTIME) < 0) return crib_fail(err, errno, "unshare time namespace");
  char buf[256];
  size_t off = 0;
  const char *clock;
  json_t *v;
  json_object_foreach(json_object_get(json_object_get(spec, "linux"), "timeOffsets"), clock, v) {
    if (strcmp(clock, "monotonic") != 0 && strcmp(clock, "boottime") != 0)
      return crib_fail(err, 0, "linux.timeOffsets: unknown clock `%s`", clock);
    int n = snprintf(buf + off, sizeof buf - off, "%s %lld %lld\n", clock, crib_json_int(v, "secs", 0),
                     crib_json_int(v, "nanosecs", 0));
    if (n < 0 || (size_t)n >= sizeof buf - off) return crib_fail(err, E2BIG, "linux.timeOffsets");
    off += (size_t)n;
  }
  if (off && crib_procfs_write(proc, "self/timens_offsets", buf, off, err) < 0)
    return crib_err_wrap(err, "linux.timeOffsets");
  /* The ns directory is reached on the handle's strict rules; its entries are magic links, and
   * following our own is the point. */
  int dir = crib_procfs_openat(proc, "self/ns", O_PATH | O_DIRECTORY, err);
  if (dir < 0) return -1;
  int fd = openat(dir, "time_for_children", O_RDONLY | O_CLOEXEC);
  int e = errno;
  close(dir);
  if (fd < 0) return crib_fail(err, e, "open /proc/self/ns/time_for_children");
  int rc = setns(fd, CLONE_NEWTIME);
  e = errno;
  close(fd);
  if (rc < 0) return crib_fail(err, e, "enter the new time namespace");
  return 0;
}

static int write_map(int proc, pid_t pid, json_t *maps, const char *file, crib_err *err) {
  char buf[4096];
  size_t off = 0;
  size_t i;
  json_t *m;
  json_array_foreach(maps, i, m) {
    json_t *c = json_object_get(m, "containerID"), *h = json_object_get(m, "hostID"),
           *s = json_object_get(m, "size");
    if (!json_is_integer(c) || !json_is_integer(h) || !json_is_integer(s))
      return crib_fail(err, 0, "linux.%s[%zu]: expected {containerID, hostID, size}",
                       strcmp(file, "uid_map") == 0 ? "uidMappings" : "gidMappings", i);
    int n = snprintf(buf + off, sizeof buf - off, "%lld %lld %lld\n",
                     (long long)json_integer_value(c), (long long)json_integer_value(h),
                     (long long)json_integer_value(s));
    if (n < 0 || (size_t)n >= sizeof buf - off) return crib_fail(err, E2BIG, "%s too long", file);
    off += (size_t)n;
  }
  if (off == 0) return 0;
  char rel[64];
  snprintf(rel, sizeof rel, "%d/%s", (int)pid, file);
  return crib_procfs_write(proc, rel, buf, off, err);
}

int crib_ns_write_id_maps(pid_t pid, json_t *spec, crib_err *err) {
  json_t *linux_ = json_object_get(spec, "linux");
  json_t *uids = json_object_get(linux_, "uidMappings"), *gids = json_object_get(linux_, "gidMappings");
  if (json_array_size(uids) == 0 || json_array_size(gids) == 0)
    return crib_fail(err, 0, "linux: a new user namespace needs uidMappings and gidMappings");
  return crib_ns_write_maps(pid, uids, gids, err);
}

int crib_ns_write_maps(pid_t pid, json_t *uids, json_t *gids, crib_err *err) {
  /* A procfs of our own pid namespace, where pid is the child's number. */
  int proc = crib_procfs_open(err);
  if (proc < 0) return -1;
  int rc = write_map(proc, pid, uids, "uid_map", err);
  if (rc == 0) rc = write_map(proc, pid, gids, "gid_map", err);
  close(proc);
  return rc;
}

/* Whether every line of the kernel's map `rel` (beneath the procfs handle proc) is one of maps'
 * entries and vice versa. */
static int check_map(int proc, const char *rel, json_t *maps, const char *field, crib_err *err) {
  /* At most 340 lines (the kernel's bound) of three numbers each. */
  static char text[340 * 3 * 22];
  if (crib_procfs_read(proc, rel, text, sizeof text, err) < 0) return -1;
  size_t lines = 0;
  long long in, out, count;
  int used;
  const char *p = text;
  while (sscanf(p, "%lld %lld %lld%n", &in, &out, &count, &used) == 3) {
    p += used;
    lines++;
    bool found = false;
    size_t i;
    json_t *m;
    json_array_foreach(maps, i, m) {
      if (json_integer_value(json_object_get(m, "containerID")) == in &&
          json_integer_value(json_object_get(m, "hostID")) == out &&
          json_integer_value(json_object_get(m, "size")) == count)
        found = true;
    }
    if (!found)
      return crib_fail(err, 0, "linux.%s does not match the joined user namespace, which maps %lld %lld %lld",
                       field, in, out, count);
  }
  if (lines != json_array_size(maps))
    return crib_fail(err, 0, "linux.%s has %zu entries, the joined user namespace %zu", field, json_array_size(maps), lines);
  return 0;
}

int crib_ns_check_joined_maps(json_t *spec, int proc, crib_err *err) {
  json_t *linux_ = json_object_get(spec, "linux");
  json_t *uids = json_object_get(linux_, "uidMappings"), *gids = json_object_get(linux_, "gidMappings");
  if (json_array_size(uids) > 0 && check_map(proc, "self/uid_map", uids, "uidMappings", err) < 0) return -1;
  if (json_array_size(gids) > 0 && check_map(proc, "self/gid_map", gids, "gidMappings", err) < 0) return -1;
  return 0;
}

pid_t crib_ns_child_start(int (*build)(void *arg, crib_err *err), void *arg, int *hold, crib_err *err) {
  int ready[2], go[2];
  if (pipe2(ready, O_CLOEXEC) < 0) return crib_fail(err, errno, "pipe2");
  if (pipe2(go, O_CLOEXEC) < 0) {
    int e = errno;
    close(ready[0]);
    close(ready[1]);
    return crib_fail(err, e, "pipe2");
  }
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(ready[0]), close(ready[1]), close(go[0]), close(go[1]);
    return crib_fail(err, e, "fork");
  }
  if (pid == 0) {
    close(ready[0]);
    close(go[1]);
    /* One NUL byte when built, else build's message. */
    crib_err e = {0};
    bool ok = build(arg, &e) == 0;
    const char *msg = ok ? "" : e.msg[0] ? e.msg : "failed";
    if (write(ready[1], msg, strlen(msg) + 1) < 0) _exit(1);
    close(ready[1]);
    /* Wait for the caller to let go (EOF). */
    char b;
    while (read(go[0], &b, 1) < 0 && errno == EINTR) {
    }
    _exit(ok ? 0 : 1);
  }
  close(ready[1]);
  close(go[0]);
  char msg[sizeof err->msg];
  ssize_t n;
  while ((n = read(ready[0], msg, sizeof msg - 1)) < 0 && errno == EINTR) {
  }
  int e = errno;
  close(ready[0]);
  if (n > 0 && msg[0] == '\0') {
    *hold = go[1];
    return pid;
  }
  if (n <= 0) {
    crib_fail(err, n < 0 ? e : 0, "the child process ended without a word");
  } else {
    msg[n] = '\0';
    crib_fail(err, 0, "%s", msg);
  }
  crib_ns_child_release(pid, go[1]);
  return -1;
}

void crib_ns_child_release(pid_t pid, int hold) {
  close(hold);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
}
