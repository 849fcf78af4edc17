/* Creating a cgroup: a directory per v1 hierarchy, or one v2 directory whose ancestors delegate
 * the controllers crib sets limits through. */
#include "cgroup-internal.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

static int mkdir_one(const char *path, bool *created, crib_err *err) {
  *created = false;
  if (mkdir(path, 0755) == 0) {
    *created = true;
    return 0;
  }
  if (errno == EEXIST) return 0;
  return crib_fail(err, errno, "mkdir %s", path);
}

/* A new v1 cpuset starts with empty cpus/mems and refuses tasks until they are set; inherit the
 * parent's, as runc does, so entering works without an explicit cpuset. */
static int cpuset_inherit(const char *parent, const char *child, crib_err *err) {
  static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
  for (size_t i = 0; i < 2; i++) {
    char mine[4096], theirs[4096];
    if (crib_cgi_read(child, files[i], mine, sizeof mine, err) < 0) return -1;
    if (mine[0] != '\0') continue;
    if (crib_cgi_read(parent, files[i], theirs, sizeof theirs, err) < 0) return -1;
    if (theirs[0] == '\0') continue;
    if (crib_cgi_write(child, files[i], theirs, err) < 0) return -1;
  }
  return 0;
}

/* mkdir -p of base+path, calling cpuset_inherit on each level when is_cpuset. */
static int create_v1_hierarchy(const char *base, const char *path, bool is_cpuset, crib_err *err) {
  char dir[PATH_MAX], parent[PATH_MAX];
  if (!CRIB_CGI_FMT(dir, "%s", base)) return crib_fail(err, ENAMETOOLONG, "cgroup path %s", base);
  for (const char *p = path; *p != '\0';) {
    while (*p == '/') p++;
    if (*p == '\0') break;
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    memcpy(parent, dir, sizeof dir);
    size_t used = strlen(dir);
    if (used + 1 + len >= sizeof dir)
      return crib_fail(err, ENAMETOOLONG, "cgroup path %s%s", base, path);
    dir[used] = '/';
    memcpy(dir + used + 1, p, len);
    dir[used + 1 + len] = '\0';
    bool created;
    if (mkdir_one(dir, &created, err) < 0) return -1;
    /* Also for existing levels: a parent someone else made may still be empty. */
    if (is_cpuset && cpuset_inherit(parent, dir, err) < 0) return -1;
    p += len;
  }
  return 0;
}

static int create_v1(const crib_cgroup *cg, crib_err *err) {
  crib_cgi_hierarchies h;
  if (crib_cgi_v1_hierarchies(cg, &h, err) < 0) return -1;
  for (size_t i = 0; i < h.n; i++) {
    char base[PATH_MAX];
    if (!CRIB_CGI_FMT(base, "%s/%s", cg->root, h.name[i]))
      return crib_fail(err, ENAMETOOLONG, "cgroup path %s/%s", cg->root, h.name[i]);
    bool is_cpuset = strstr(h.name[i], "cpuset") != NULL;
    if (create_v1_hierarchy(base, cg->path, is_cpuset, err) < 0) return -1;
  }
  return 0;
}

/* Controllers crib sets limits through on v2. */
static const char *const wanted_v2[] = {"cpu", "memory", "pids", "io", "cpuset", "hugetlb"};
#define N_WANTED (sizeof wanted_v2 / sizeof wanted_v2[0])

static bool word_in(const char *list, const char *word) {
  size_t wlen = strlen(word);
  for (const char *p = list; *p != '\0';) {
    while (*p == ' ') p++;
    const char *end = strchr(p, ' ');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == wlen && strncmp(p, word, len) == 0) return true;
    p += len;
  }
  return false;
}

/* Enable in dir's cgroup.subtree_control each wanted controller that dir offers
 * (cgroup.controllers) and has not delegated yet. One write for all first; if the kernel
 * refuses the batch (one controller busy), one by one so the others still get enabled. A
 * controller that cannot be enabled is left out with a warning: limits that need it then fail
 * on their own file, naming it. */
static int enable_controllers(const char *dir, crib_err *err) {
  char available[1024], enabled[1024];
  crib_err probe;
  if (crib_cgi_read(dir, "cgroup.controllers", available, sizeof available, &probe) < 0) {
    if (probe.errnum == ENOENT) return 0; /* not a cgroup2 directory (prepared test tree) */
    *err = probe;
    return -1;
  }
  if (crib_cgi_read(dir, "cgroup.subtree_control", enabled, sizeof enabled, err) < 0) return -1;
  char batch[256] = "";
  const char *todo[N_WANTED];
  size_t n = 0;
  for (size_t i = 0; i < N_WANTED; i++) {
    if (!word_in(available, wanted_v2[i]) || word_in(enabled, wanted_v2[i])) continue;
    todo[n++] = wanted_v2[i];
    size_t used = strlen(batch);
    snprintf(batch + used, sizeof batch - used, "%s+%s", used ? " " : "", wanted_v2[i]);
  }
  if (n == 0) return 0;
  crib_err batch_err;
  if (crib_cgi_write(dir, "cgroup.subtree_control", batch, &batch_err) == 0) return 0;
  for (size_t i = 0; i < n; i++) {
    char one[32];
    crib_err one_err;
    snprintf(one, sizeof one, "+%s", todo[i]);
    if (crib_cgi_write(dir, "cgroup.subtree_control", one, &one_err) < 0)
      crib_cgi_warn("cgroup controller %s not enabled: %s", todo[i], one_err.msg);
  }
  return 0;
}

static int create_v2(const crib_cgroup *cg, crib_err *err) {
  char dir[PATH_MAX];
  if (!CRIB_CGI_FMT(dir, "%s", cg->root))
    return crib_fail(err, ENAMETOOLONG, "cgroup root %s", cg->root);
  for (const char *p = cg->path; *p != '\0';) {
    while (*p == '/') p++;
    if (*p == '\0') break;
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    /* Controllers reach a child only through every ancestor's subtree_control, the leaf's own
     * excluded: processes live in the leaf, and a cgroup with processes cannot delegate. */
    if (enable_controllers(dir, err) < 0) return -1;
    size_t used = strlen(dir);
    if (used + 1 + len >= sizeof dir)
      return crib_fail(err, ENAMETOOLONG, "cgroup path %s%s", cg->root, cg->path);
    dir[used] = '/';
    memcpy(dir + used + 1, p, len);
    dir[used + 1 + len] = '\0';
    bool created;
    if (mkdir_one(dir, &created, err) < 0) return -1;
    p += len;
  }
  return 0;
}

int crib_cg_create(const crib_cgroup *cg, crib_err *err) {
  if (cg->path[0] != '/' || cg->path[1] == '\0')
    return crib_fail(err, 0, "cgroup path \"%s\": not resolved (call crib_cg_resolve_path)", cg->path);
  int rc = cg->mode == CRIB_CG_V2 ? create_v2(cg, err) : create_v1(cg, err);
  if (rc < 0) crib_err_wrap(err, "create cgroup %s", cg->path);
  return rc;
}
