/* Processes of a cgroup: moving one in, listing them, and the OOM kill counter. */
#include "cgroup-internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int enter_one(const char *dir, void *arg, crib_err *err) {
  return crib_cgi_write(dir, "cgroup.procs", arg, err);
}

int crib_cg_enter(const crib_cgroup *cg, pid_t pid, crib_err *err) {
  char value[32];
  snprintf(value, sizeof value, "%d", (int)pid);
  if (crib_cgi_for_each_dir(cg, enter_one, value, err) < 0)
    return crib_err_wrap(err, "move pid %d into cgroup %s", (int)pid, cg->path);
  return 0;
}

typedef struct {
  pid_t *v;
  size_t n, cap;
} pid_list;

/* No duplicate check: a process is in exactly one cgroup of a hierarchy. */
static int pid_list_add(pid_list *l, pid_t pid, crib_err *err) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    pid_t *bigger = realloc(l->v, cap * sizeof *bigger);
    if (bigger == NULL) return crib_fail(err, ENOMEM, "list cgroup processes");
    l->v = bigger;
    l->cap = cap;
  }
  l->v[l->n++] = pid;
  return 0;
}

/* cgroup.procs of dir and of every cgroup below it: a container may create child cgroups
 * (systemd inside a container does), and their processes are the container's too. */
static int collect(const char *dir, pid_list *l, int depth, crib_err *err) {
  char path[PATH_MAX];
  if (!CRIB_CGI_FMT(path, "%s/cgroup.procs", dir))
    return crib_fail(err, ENAMETOOLONG, "cgroup path %s", dir);
  char *body;
  if (crib_cgi_read_all(path, &body, err) < 0) return -1;
  for (char *p = body; *p != '\0';) {
    char *end;
    long pid = strtol(p, &end, 10);
    if (end == p) break;
    if (pid > 0 && pid_list_add(l, (pid_t)pid, err) < 0) {
      free(body);
      return -1;
    }
    p = end;
    while (*p == '\n') p++;
  }
  free(body);
  if (depth > 32) return 0;
  DIR *d = opendir(dir);
  if (d == NULL) return errno == ENOENT ? 0 : crib_fail(err, errno, "opendir %s", dir);
  struct dirent *de;
  int rc = 0;
  while (rc == 0 && (de = readdir(d)) != NULL) {
    if (de->d_type != DT_DIR || de->d_name[0] == '.') continue;
    char child[PATH_MAX];
    if (!CRIB_CGI_FMT(child, "%s/%s", dir, de->d_name)) continue;
    crib_err sub;
    /* A child removed meanwhile is simply gone. */
    if (collect(child, l, depth + 1, &sub) < 0 && sub.errnum != ENOENT) {
      *err = sub;
      rc = -1;
    }
  }
  closedir(d);
  return rc;
}

int crib_cg_pids(const crib_cgroup *cg, pid_t **pids, size_t *n, crib_err *err) {
  char dir[PATH_MAX];
  *pids = NULL;
  *n = 0;
  if (crib_cgi_procs_dir(cg, dir, sizeof dir, err) < 0) return -1;
  pid_list l = {0};
  if (collect(dir, &l, 0, err) < 0) {
    free(l.v);
    return crib_err_wrap(err, "list processes of cgroup %s", cg->path);
  }
  *pids = l.v;
  *n = l.n;
  return 0;
}

int crib_cg_oom_kills(const crib_cgroup *cg, long *count, crib_err *err) {
  char dir[PATH_MAX];
  const char *file = cg->mode == CRIB_CG_V2 ? "memory.events" : "memory.oom_control";
  *count = 0;
  if (cg->mode == CRIB_CG_V2) {
    if (!CRIB_CGI_FMT(dir, "%s%s", cg->root, cg->path))
      return crib_fail(err, ENAMETOOLONG, "cgroup path %s%s", cg->root, cg->path);
  } else if (crib_cgi_v1_dir(cg, "memory", dir, sizeof dir, err) < 0) {
    return -1;
  }
  char body[1024];
  if (crib_cgi_read(dir, file, body, sizeof body, err) < 0) return -1;
  long long v;
  /* oom_kill appeared in memory.oom_control with Linux 4.13; older kernels cannot say. */
  if (!crib_cgi_keyed_value(body, "oom_kill", &v))
    return crib_fail(err, 0, "%s/%s has no oom_kill counter (kernel older than 4.13?)", dir, file);
  *count = (long)v;
  return 0;
}
