/* linux.cgroupsPath → the cgroup's path inside each hierarchy. Two spellings exist: a plain path
 * (cgroupfs driver) and systemd's "slice:prefix:name", which names a scope unit inside a slice;
 * crib does not talk to systemd, so it computes the directory systemd would use and manages it
 * through the filesystem, as runc's fs driver does with systemd-style paths. */
#include "cgroup-internal.h"

#include <errno.h>
#include <string.h>

/* Append "/<component>" to out (cap bytes), failing when it does not fit. */
static int append(char *out, size_t cap, const char *component, size_t len, const char *input,
                  crib_err *err) {
  size_t used = strlen(out);
  if (used + 1 + len + 1 > cap)
    return crib_fail(err, ENAMETOOLONG, "cgroupsPath %s: too long", input);
  out[used] = '/';
  memcpy(out + used + 1, component, len);
  out[used + 1 + len] = '\0';
  return 0;
}

/* A plain path: relative ones are taken from the hierarchy root; "." and empty components are
 * dropped; ".." is refused outright (it could climb out of the delegated subtree). */
static int normalize_plain(const char *input, char *out, size_t cap, crib_err *err) {
  out[0] = '\0';
  for (const char *p = input; *p != '\0';) {
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    if (len == 2 && strncmp(p, "..", 2) == 0)
      return crib_fail(err, 0, "cgroupsPath %s: \"..\" is not allowed", input);
    if (len > 0 && !(len == 1 && p[0] == '.') && append(out, cap, p, len, input, err) < 0)
      return -1;
    p += len;
    if (*p == '/') p++;
  }
  if (out[0] == '\0')
    return crib_fail(err, 0, "cgroupsPath %s: names the root cgroup, which crib will not manage",
                     input);
  return 0;
}

/* systemd's slice naming: "a-b-c.slice" lives at a.slice/a-b.slice/a-b-c.slice; "-.slice" is
 * the root slice. Dashes at either end or doubled are invalid unit names for systemd. */
static int expand_slice(const char *input, const char *slice, char *out, size_t cap,
                        crib_err *err) {
  out[0] = '\0';
  static const char suffix[] = ".slice";
  size_t len = strlen(slice);
  size_t slen = sizeof suffix - 1;
  if (strchr(slice, '/') != NULL || len <= slen || strcmp(slice + len - slen, suffix) != 0)
    return crib_fail(err, 0, "cgroupsPath %s: slice %s is not a systemd slice name (x-y.slice)",
                     input, slice);
  if (strcmp(slice, "-.slice") == 0) return 0;
  size_t base = len - slen;
  if (slice[0] == '-' || slice[base - 1] == '-' || strstr(slice, "--") != NULL)
    return crib_fail(err, 0, "cgroupsPath %s: slice %s has a misplaced dash", input, slice);
  for (size_t i = 0; i <= base; i++) {
    if (i < base && slice[i] != '-') continue;
    /* Each dash closes one ancestor slice: "<slice[0..i]>.slice". */
    char unit[NAME_MAX + 1];
    if (i + slen >= sizeof unit)
      return crib_fail(err, ENAMETOOLONG, "cgroupsPath %s: slice name too long", input);
    memcpy(unit, slice, i);
    memcpy(unit + i, suffix, slen + 1);
    if (append(out, cap, unit, strlen(unit), input, err) < 0) return -1;
  }
  return 0;
}

static bool bad_unit_part(const char *s) {
  return strchr(s, '/') != NULL || strcmp(s, "..") == 0 || strcmp(s, ".") == 0;
}

static int resolve_systemd(const char *input, char *out, size_t cap, crib_err *err) {
  char buf[PATH_MAX];
  if (!CRIB_CGI_FMT(buf, "%s", input))
    return crib_fail(err, ENAMETOOLONG, "cgroupsPath %s: too long", input);
  char *slice = buf;
  char *prefix = strchr(slice, ':');
  *prefix++ = '\0';
  char *name = strchr(prefix, ':');
  *name++ = '\0';
  if (*name == '\0') return crib_fail(err, 0, "cgroupsPath %s: the unit name is empty", input);
  if (bad_unit_part(prefix) || bad_unit_part(name))
    return crib_fail(err, 0, "cgroupsPath %s: prefix and name must not contain '/' or be \"..\"",
                     input);
  /* runc's default parent when the slice is left out. */
  if (*slice == '\0') slice = "system.slice";
  if (expand_slice(input, slice, out, cap, err) < 0) return -1;

  char unit[NAME_MAX + 1];
  size_t nlen = strlen(name);
  bool fits;
  if (nlen > 6 && strcmp(name + nlen - 6, ".slice") == 0) fits = CRIB_CGI_FMT(unit, "%s", name);
  else if (*prefix == '\0') fits = CRIB_CGI_FMT(unit, "%s.scope", name);
  else fits = CRIB_CGI_FMT(unit, "%s-%s.scope", prefix, name);
  if (!fits) return crib_fail(err, ENAMETOOLONG, "cgroupsPath %s: unit name too long", input);
  return append(out, cap, unit, strlen(unit), input, err);
}

static bool is_systemd_form(const char *path) {
  if (path[0] == '/') return false;
  int colons = 0;
  for (const char *p = path; *p; p++) colons += *p == ':';
  return colons == 2;
}

int crib_cg_resolve_path(crib_cgroup *cg, const char *cgroups_path, const char *id,
                         crib_err *err) {
  if (cgroups_path == NULL || *cgroups_path == '\0') {
    if (id == NULL || *id == '\0' || bad_unit_part(id))
      return crib_fail(err, 0, "container id \"%s\": cannot name a cgroup", id ? id : "");
    if (!CRIB_CGI_FMT(cg->path, "/crib/%s", id))
      return crib_fail(err, ENAMETOOLONG, "container id %s: too long", id);
    return 0;
  }
  if (is_systemd_form(cgroups_path))
    return resolve_systemd(cgroups_path, cg->path, sizeof cg->path, err);
  return normalize_plain(cgroups_path, cg->path, sizeof cg->path, err);
}
