#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crib-atomic-file.h"
#include "files.h"
#include "spec.h"

int crib_validate_id(const char *id, crib_err *err) {
  size_t n = strlen(id);
  if (n == 0 || n >= 256) return crib_fail(err, 0, "container id `%s`: must be 1-255 chars", id);
  if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
    return crib_fail(err, 0, "container id `%s` is not allowed", id);
  for (size_t i = 0; i < n; i++) {
    char c = id[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '-' || c == '.'))
      return crib_fail(err, 0, "container id `%s`: only [A-Za-z0-9_.-] allowed", id);
  }
  return 0;
}

int crib_state_path(const char *root, const char *id, char *out, size_t n, crib_err *err) {
  if (crib_validate_id(id, err) < 0) return -1;
  if (snprintf(out, n, "%s/%s", root, id) >= (int)n)
    return crib_fail(err, ENAMETOOLONG, "state dir for `%s`", id);
  return 0;
}

void crib_now_rfc3339(char *out, size_t n) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char base[32];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, n, "%s.%09ldZ", base, ts.tv_nsec);
}

int crib_state_write(const crib_state *st, crib_err *err) {
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "id", st->id, "bundle", st->bundle,
                        "rootfs", st->rootfs, "cgroup", st->cgroup, "pid", (json_int_t)st->pid,
                        "created", st->created, "startTime", "");
  if (!o) return crib_fail(err, ENOMEM, "build state.json");
  char start[32];
  snprintf(start, sizeof start, "%llu", st->start_time);
  json_object_set_new(o, "startTime", json_string(start));
  json_object_set(o, "annotations", st->annotations ? st->annotations : json_object());
  if (!st->annotations) json_decref(json_object_get(o, "annotations")); /* drop the temp ref */
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (!text) return crib_fail(err, ENOMEM, "serialize state.json");
  char path[PATH_MAX];
  if (!CRIB_FMT(path, "%s/state.json", st->dir)) {
    free(text);
    return crib_fail(err, ENAMETOOLONG, "state path `%s`", st->dir);
  }
  int rc = crib_atomic_write_file(path, text, strlen(text), 0600, err);
  free(text);
  return rc;
}

int crib_state_read(const char *root, const char *id, crib_state *st, crib_err *err) {
  memset(st, 0, sizeof *st);
  if (crib_state_path(root, id, st->dir, sizeof st->dir, err) < 0) return -1;
  char path[PATH_MAX];
  if (!CRIB_FMT(path, "%s/state.json", st->dir))
    return crib_fail(err, ENAMETOOLONG, "state path `%s`", st->dir);
  json_error_t jerr;
  json_t *o = crib_json_load_path(path, &jerr);
  if (!o) {
    struct stat sb;
    if (stat(path, &sb) < 0 && errno == ENOENT)
      return crib_fail(err, ENOENT, "container `%s` does not exist", id);
    return crib_fail(err, 0, "parse `%s`: %s", path, jerr.text);
  }
  snprintf(st->id, sizeof st->id, "%s", id);
  const char *s;
  if ((s = crib_json_str(o, "bundle"))) snprintf(st->bundle, sizeof st->bundle, "%s", s);
  if ((s = crib_json_str(o, "rootfs"))) snprintf(st->rootfs, sizeof st->rootfs, "%s", s);
  if ((s = crib_json_str(o, "cgroup"))) snprintf(st->cgroup, sizeof st->cgroup, "%s", s);
  if ((s = crib_json_str(o, "created"))) snprintf(st->created, sizeof st->created, "%s", s);
  if ((s = crib_json_str(o, "startTime"))) st->start_time = strtoull(s, NULL, 10);
  st->pid = (pid_t)crib_json_int(o, "pid", 0);
  json_t *ann = json_object_get(o, "annotations");
  if (json_is_object(ann)) st->annotations = json_incref(ann);
  json_decref(o);
  return 0;
}

void crib_state_free(crib_state *st) {
  if (st->annotations) json_decref(st->annotations);
  st->annotations = NULL;
}

int crib_proc_start_time(pid_t pid, unsigned long long *start, bool *zombie) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  crib_err e;
  if (crib_read_file(path, buf, sizeof buf, NULL, &e) < 0) return -1;
  /* comm may hold spaces and parentheses: fields start after the last ')'. */
  char *p = strrchr(buf, ')');
  if (!p) return -1;
  p += 2; /* now at field 3, the state */
  if (zombie) *zombie = (*p == 'Z' || *p == 'X');
  for (int field = 3; field < 22; field++) {
    p = strchr(p, ' ');
    if (!p) return -1;
    p++;
  }
  *start = strtoull(p, NULL, 10);
  return 0;
}

crib_status crib_state_status(const crib_state *st) {
  unsigned long long start;
  bool zombie = false;
  if (st->pid <= 0 || crib_proc_start_time(st->pid, &start, &zombie) < 0) return CRIB_STOPPED;
  if (zombie || (st->start_time && start != st->start_time)) return CRIB_STOPPED;
  char fifo[PATH_MAX];
  if (CRIB_FMT(fifo, "%s/exec.fifo", st->dir) && access(fifo, F_OK) == 0) return CRIB_CREATED;
  return CRIB_RUNNING;
}

const char *crib_status_name(crib_status s) {
  switch (s) {
  case CRIB_CREATED: return "created";
  case CRIB_RUNNING: return "running";
  case CRIB_STOPPED: return "stopped";
  }
  return "unknown";
}

json_t *crib_hook_state(const char *id, const char *bundle, pid_t pid, json_t *annotations,
                        const char *status) {
  json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s}", "ociVersion", "1.0.2", "id", id, "status",
                        status, "pid", (json_int_t)pid, "bundle", bundle);
  if (o) json_object_set_new(o, "annotations", annotations ? json_incref(annotations) : json_object());
  return o;
}

json_t *crib_state_json(const crib_state *st, crib_status s) {
  json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "ociVersion", "1.0.2", "id", st->id,
                        "status", crib_status_name(s),
                        "pid", (json_int_t)(s == CRIB_STOPPED ? 0 : st->pid), "bundle", st->bundle,
                        "rootfs", st->rootfs);
  if (!o) return NULL;
  json_object_set_new(o, "created", json_string(st->created));
  json_object_set(o, "annotations", st->annotations ? st->annotations : json_object());
  if (!st->annotations) json_decref(json_object_get(o, "annotations"));
  return o;
}
