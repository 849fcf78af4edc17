/* Which cgroup layout the host has, and where each v1 controller's hierarchy is mounted. */
#include "cgroup-internal.h"

#include <dirent.h>
#include <errno.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif

int crib_cg_detect(crib_cgroup *cg, crib_err *err) {
  memset(cg, 0, sizeof *cg);
  const char *root = getenv("CRIB_CGROUP_ROOT");
  if (root == NULL || *root == '\0') root = "/sys/fs/cgroup";
  if (root[0] != '/') return crib_fail(err, 0, "CRIB_CGROUP_ROOT %s: must be an absolute path", root);
  if (!CRIB_CGI_FMT(cg->root, "%s", root))
    return crib_fail(err, ENAMETOOLONG, "CRIB_CGROUP_ROOT %s", root);
  size_t len = strlen(cg->root);
  while (len > 1 && cg->root[len - 1] == '/') cg->root[--len] = '\0';

  const char *mode = getenv("CRIB_CGROUP_MODE");
  if (mode != NULL && *mode != '\0') {
    if (strcmp(mode, "v1") == 0) cg->mode = CRIB_CG_V1;
    else if (strcmp(mode, "v2") == 0) cg->mode = CRIB_CG_V2;
    else return crib_fail(err, 0, "CRIB_CGROUP_MODE %s: must be v1 or v2", mode);
    return 0;
  }
  struct statfs fs;
  if (statfs(cg->root, &fs) < 0) return crib_fail(err, errno, "statfs %s", cg->root);
  /* A unified mount at the root means v2; anything else (the tmpfs of a v1 or hybrid layout)
   * holds one mount per v1 hierarchy. */
  cg->mode = ((unsigned long)fs.f_type == (unsigned long)CGROUP2_SUPER_MAGIC) ? CRIB_CG_V2 : CRIB_CG_V1;
  return 0;
}

/* Controllers (and the named systemd hierarchy) crib knows how to handle on v1. A directory under
 * root is a hierarchy when every comma-separated part of its name is one of these and a cgroup v1
 * filesystem is mounted on it (list_hierarchy_entries). */
static const char *const known_controllers[] = {
    "cpu",   "cpuacct", "cpuset", "memory",    "devices", "freezer", "blkio", "pids",
    "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc", "systemd", "name=systemd",
};

static bool is_known(const char *token, size_t len) {
  for (size_t i = 0; i < sizeof known_controllers / sizeof known_controllers[0]; i++)
    if (strlen(known_controllers[i]) == len && strncmp(known_controllers[i], token, len) == 0)
      return true;
  return false;
}

static bool is_hierarchy_name(const char *name) {
  if (name[0] == '.' || name[0] == '\0') return false;
  for (const char *p = name;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (!is_known(p, len)) return false;
    if (comma == NULL) return true;
    p = comma + 1;
  }
}

static bool has_token(const char *name, const char *controller) {
  size_t clen = strlen(controller);
  for (const char *p = name;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if (len == clen && strncmp(p, controller, len) == 0) return true;
    if (comma == NULL) return false;
    p = comma + 1;
  }
}

static int cmp_names(const void *a, const void *b) { return strcmp(a, b); }

/* Sorted directory entries of root that name v1 hierarchies (symlinks included). */
static int list_hierarchy_entries(const crib_cgroup *cg, crib_cgi_hierarchies *h, crib_err *err) {
  h->n = 0;
  DIR *dir = opendir(cg->root);
  if (dir == NULL) return crib_fail(err, errno, "opendir %s", cg->root);
  struct dirent *de;
  while ((de = readdir(dir)) != NULL) {
    if (!is_hierarchy_name(de->d_name)) continue;
    char path[PATH_MAX];
    struct stat st;
    if (!CRIB_CGI_FMT(path, "%s/%s", cg->root, de->d_name)) continue;
    if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) continue;
    /* The name proves nothing: a plain directory made by hand and named "cpu,cpuacct" is not a
     * hierarchy, and cgroups made or limits written in it would be no cgroup at all. Only a
     * mounted cgroup v1 filesystem counts. */
    struct statfs fs;
    if (statfs(path, &fs) < 0 || (unsigned long)fs.f_type != (unsigned long)CGROUP_SUPER_MAGIC)
      continue;
    if (h->n == CRIB_CGI_MAX_HIERARCHIES) break;
    snprintf(h->name[h->n++], sizeof h->name[0], "%s", de->d_name);
  }
  closedir(dir);
  qsort(h->name, h->n, sizeof h->name[0], cmp_names);
  return 0;
}

int crib_cgi_v1_hierarchies(const crib_cgroup *cg, crib_cgi_hierarchies *h, crib_err *err) {
  crib_cgi_hierarchies all;
  if (list_hierarchy_entries(cg, &all, err) < 0) return -1;
  /* "cpu" and "cpuacct" are often symlinks to "cpu,cpuacct": one mount, visited once. Each
   * mount has its own device number, which identifies the hierarchy. */
  dev_t seen_dev[CRIB_CGI_MAX_HIERARCHIES];
  ino_t seen_ino[CRIB_CGI_MAX_HIERARCHIES];
  h->n = 0;
  for (size_t i = 0; i < all.n; i++) {
    char path[PATH_MAX];
    struct stat st;
    if (!CRIB_CGI_FMT(path, "%s/%s", cg->root, all.name[i]) || stat(path, &st) < 0) continue;
    bool seen = false;
    for (size_t j = 0; j < h->n && !seen; j++)
      seen = seen_dev[j] == st.st_dev && seen_ino[j] == st.st_ino;
    if (seen) continue;
    seen_dev[h->n] = st.st_dev;
    seen_ino[h->n] = st.st_ino;
    memcpy(h->name[h->n], all.name[i], sizeof all.name[i]);
    h->n++;
  }
  if (h->n == 0) return crib_fail(err, 0, "no cgroup v1 hierarchy found under %s", cg->root);
  return 0;
}

int crib_cgi_v1_dir(const crib_cgroup *cg, const char *controller, char *out, size_t cap,
                    crib_err *err) {
  crib_cgi_hierarchies all;
  if (list_hierarchy_entries(cg, &all, err) < 0) return -1;
  for (size_t i = 0; i < all.n; i++) {
    if (!has_token(all.name[i], controller)) continue;
    if ((size_t)snprintf(out, cap, "%s/%s%s", cg->root, all.name[i], cg->path) >= cap)
      return crib_fail(err, ENAMETOOLONG, "cgroup path %s/%s%s", cg->root, all.name[i], cg->path);
    return 0;
  }
  return crib_fail(err, ENOENT, "cgroup v1 controller %s is not mounted under %s", controller,
                   cg->root);
}

int crib_cgi_for_each_dir(const crib_cgroup *cg, crib_cgi_dir_fn fn, void *arg, crib_err *err) {
  char dir[PATH_MAX];
  if (cg->mode == CRIB_CG_V2) {
    if (!CRIB_CGI_FMT(dir, "%s%s", cg->root, cg->path))
      return crib_fail(err, ENAMETOOLONG, "cgroup path %s%s", cg->root, cg->path);
    return fn(dir, arg, err);
  }
  crib_cgi_hierarchies h;
  if (crib_cgi_v1_hierarchies(cg, &h, err) < 0) return -1;
  int rc = 0;
  for (size_t i = 0; i < h.n; i++) {
    crib_err one;
    if (!CRIB_CGI_FMT(dir, "%s/%s%s", cg->root, h.name[i], cg->path))
      crib_fail(&one, ENAMETOOLONG, "cgroup path %s/%s%s", cg->root, h.name[i], cg->path);
    else if (fn(dir, arg, &one) == 0)
      continue;
    if (rc == 0) *err = one;
    rc = -1;
  }
  return rc;
}

int crib_cgi_procs_dir(const crib_cgroup *cg, char *out, size_t cap, crib_err *err) {
  if (cg->mode == CRIB_CG_V2) {
    if ((size_t)snprintf(out, cap, "%s%s", cg->root, cg->path) >= cap)
      return crib_fail(err, ENAMETOOLONG, "cgroup path %s%s", cg->root, cg->path);
    return 0;
  }
  /* Processes enter every hierarchy, so any one lists them; prefer those that are always
   * mounted and that kill_all uses (freezer). */
  static const char *const order[] = {"pids", "freezer", "memory", "cpu", "systemd", "devices"};
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
    crib_err ignored;
    if (crib_cgi_v1_dir(cg, order[i], out, cap, &ignored) == 0) return 0;
  }
  crib_cgi_hierarchies h;
  if (crib_cgi_v1_hierarchies(cg, &h, err) < 0) return -1;
  if ((size_t)snprintf(out, cap, "%s/%s%s", cg->root, h.name[0], cg->path) >= cap)
    return crib_fail(err, ENAMETOOLONG, "cgroup path %s/%s%s", cg->root, h.name[0], cg->path);
  return 0;
}
