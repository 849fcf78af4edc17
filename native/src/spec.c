#include "spec.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *crib_json_str(json_t *obj, const char *key) {
  json_t *v = obj ? json_object_get(obj, key) : NULL;
  return json_is_string(v) ? json_string_value(v) : NULL;
}

long long crib_json_int(json_t *obj, const char *key, long long def) {
  json_t *v = obj ? json_object_get(obj, key) : NULL;
  return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

bool crib_json_bool(json_t *obj, const char *key, bool def) {
  json_t *v = obj ? json_object_get(obj, key) : NULL;
  return json_is_boolean(v) ? json_is_true(v) : def;
}

/* Fails unless obj[key] is absent or of the expected json type. */
static int want(json_t *obj, const char *key, json_type type, const char *where, crib_err *err) {
  static const char *names[] = {"object", "array", "string", "integer", "real",
                                "true",   "false", "null"};
  json_t *v = json_object_get(obj, key);
  if (!v) return 0;
  json_type t = json_typeof(v);
  if (t == type) return 0;
  if (type == JSON_TRUE && (t == JSON_FALSE)) return 0; /* "boolean" */
  return crib_fail(err, 0, "%s.%s: expected %s", where, key,
                   type == JSON_TRUE ? "boolean" : names[type]);
}

static int want_string_array(json_t *obj, const char *key, const char *where, crib_err *err) {
  if (want(obj, key, JSON_ARRAY, where, err) < 0) return -1;
  json_t *arr = json_object_get(obj, key);
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    if (!json_is_string(v))
      return crib_fail(err, 0, "%s.%s[%zu]: expected string", where, key, i);
  }
  return 0;
}

int crib_spec_check_process(json_t *p, const char *where, crib_err *err) {
  if (!json_is_object(p)) return crib_fail(err, 0, "%s: expected object", where);
  if (want_string_array(p, "args", where, err) < 0) return -1;
  json_t *args = json_object_get(p, "args");
  if (!args || json_array_size(args) == 0)
    return crib_fail(err, 0, "%s.args: must name the program to run", where);
  if (want_string_array(p, "env", where, err) < 0) return -1;
  if (want(p, "cwd", JSON_STRING, where, err) < 0) return -1;
  const char *cwd = crib_json_str(p, "cwd");
  if (cwd && cwd[0] != '/')
    return crib_fail(err, 0, "%s.cwd: `%s` is not an absolute path", where, cwd);
  if (want(p, "terminal", JSON_TRUE, where, err) < 0) return -1;
  if (want(p, "noNewPrivileges", JSON_TRUE, where, err) < 0) return -1;
  if (want(p, "oomScoreAdj", JSON_INTEGER, where, err) < 0) return -1;
  if (want(p, "user", JSON_OBJECT, where, err) < 0) return -1;
  if (want(p, "capabilities", JSON_OBJECT, where, err) < 0) return -1;
  if (want(p, "rlimits", JSON_ARRAY, where, err) < 0) return -1;
  json_t *user = json_object_get(p, "user");
  if (user) {
    if (want(user, "uid", JSON_INTEGER, "process.user", err) < 0) return -1;
    if (want(user, "gid", JSON_INTEGER, "process.user", err) < 0) return -1;
    if (want(user, "umask", JSON_INTEGER, "process.user", err) < 0) return -1;
    if (want(user, "additionalGids", JSON_ARRAY, "process.user", err) < 0) return -1;
  }
  json_t *caps = json_object_get(p, "capabilities");
  if (caps) {
    static const char *sets[] = {"bounding", "effective", "inheritable", "permitted", "ambient"};
    for (size_t i = 0; i < 5; i++)
      if (want_string_array(caps, sets[i], "process.capabilities", err) < 0) return -1;
  }
  size_t i;
  json_t *rl;
  json_array_foreach(json_object_get(p, "rlimits"), i, rl) {
    if (!json_is_object(rl) || !crib_json_str(rl, "type") ||
        !json_is_integer(json_object_get(rl, "hard")) ||
        !json_is_integer(json_object_get(rl, "soft")))
      return crib_fail(err, 0, "%s.rlimits[%zu]: expected {type, hard, soft}", where, i);
  }
  return 0;
}

static int check_linux(json_t *linux_, crib_err *err) {
  if (!json_is_object(linux_)) return crib_fail(err, 0, "config.json: linux: expected object");
  if (want(linux_, "namespaces", JSON_ARRAY, "linux", err) < 0) return -1;
  if (want(linux_, "uidMappings", JSON_ARRAY, "linux", err) < 0) return -1;
  if (want(linux_, "gidMappings", JSON_ARRAY, "linux", err) < 0) return -1;
  if (want(linux_, "devices", JSON_ARRAY, "linux", err) < 0) return -1;
  if (want(linux_, "sysctl", JSON_OBJECT, "linux", err) < 0) return -1;
  if (want(linux_, "resources", JSON_OBJECT, "linux", err) < 0) return -1;
  if (want(linux_, "cgroupsPath", JSON_STRING, "linux", err) < 0) return -1;
  if (want(linux_, "seccomp", JSON_OBJECT, "linux", err) < 0) return -1;
  if (want(linux_, "rootfsPropagation", JSON_STRING, "linux", err) < 0) return -1;
  if (want_string_array(linux_, "maskedPaths", "linux", err) < 0) return -1;
  if (want_string_array(linux_, "readonlyPaths", "linux", err) < 0) return -1;
  size_t i;
  json_t *ns;
  json_array_foreach(json_object_get(linux_, "namespaces"), i, ns) {
    if (!json_is_object(ns) || !crib_json_str(ns, "type"))
      return crib_fail(err, 0, "linux.namespaces[%zu]: expected {type, path?}", i);
    if (want(ns, "path", JSON_STRING, "linux.namespaces[]", err) < 0) return -1;
  }
  return 0;
}

json_t *crib_json_load_path(const char *path, json_error_t *jerr) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    memset(jerr, 0, sizeof *jerr);
    jerr->line = -1;
    snprintf(jerr->text, sizeof jerr->text, "unable to open %s: %s", path, strerror(errno));
    snprintf(jerr->source, sizeof jerr->source, "%s", path);
    return NULL;
  }
  /* Through stdio: jansson's json_loadfd reads one byte per read(2). */
  FILE *f = fdopen(fd, "r");
  if (!f) {
    memset(jerr, 0, sizeof *jerr);
    jerr->line = -1;
    snprintf(jerr->text, sizeof jerr->text, "unable to open %s: %s", path, strerror(errno));
    close(fd);
    return NULL;
  }
  json_t *v = json_loadf(f, 0, jerr);
  fclose(f);
  return v;
}

json_t *crib_spec_load(const char *bundle, crib_err *err) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/config.json", bundle) >= (int)sizeof path) {
    crib_fail(err, ENAMETOOLONG, "bundle path `%s`", bundle);
    return NULL;
  }
  json_error_t jerr;
  json_t *spec = crib_json_load_path(path, &jerr);
  if (!spec) {
    if (jerr.line < 0 || strstr(jerr.text, "unable to open"))
      crib_fail(err, ENOENT, "load `%s`", path);
    else
      crib_fail(err, 0, "parse `%s`: line %d: %s", path, jerr.line, jerr.text);
    return NULL;
  }
  if (!json_is_object(spec)) {
    crib_fail(err, 0, "`%s`: expected a JSON object", path);
    goto bad;
  }
  json_t *root = json_object_get(spec, "root");
  if (!json_is_object(root) || !crib_json_str(root, "path")) {
    crib_fail(err, 0, "`%s`: root.path is required", path);
    goto bad;
  }
  json_t *process = json_object_get(spec, "process");
  if (!process) {
    crib_fail(err, 0, "`%s`: process is required", path);
    goto bad;
  }
  if (crib_spec_check_process(process, "process", err) < 0) goto wrap;
  if (want(spec, "mounts", JSON_ARRAY, "config.json", err) < 0) goto wrap;
  if (want(spec, "hostname", JSON_STRING, "config.json", err) < 0) goto wrap;
  if (want(spec, "domainname", JSON_STRING, "config.json", err) < 0) goto wrap;
  if (want(spec, "annotations", JSON_OBJECT, "config.json", err) < 0) goto wrap;
  json_t *linux_ = json_object_get(spec, "linux");
  if (!linux_) {
    crib_fail(err, 0, "`%s`: linux is required", path);
    goto bad;
  }
  if (check_linux(linux_, err) < 0) goto wrap;
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(spec, "mounts"), i, m) {
    const char *dest = crib_json_str(m, "destination");
    if (!json_is_object(m) || !dest || dest[0] != '/') {
      crib_fail(err, 0, "mounts[%zu]: destination must be an absolute path", i);
      goto wrap;
    }
    if (want_string_array(m, "options", "mounts[]", err) < 0) goto wrap;
    if (want(m, "source", JSON_STRING, "mounts[]", err) < 0) goto wrap;
    if (want(m, "type", JSON_STRING, "mounts[]", err) < 0) goto wrap;
  }
  return spec;
wrap:
  crib_err_wrap(err, "`%s`", path);
bad:
  json_decref(spec);
  return NULL;
}

int crib_spec_rootfs(json_t *spec, const char *bundle, char *out, size_t n, crib_err *err) {
  const char *root = crib_json_str(json_object_get(spec, "root"), "path");
  char joined[PATH_MAX];
  if (root[0] == '/')
    snprintf(joined, sizeof joined, "%s", root);
  else if (snprintf(joined, sizeof joined, "%s/%s", bundle, root) >= (int)sizeof joined)
    return crib_fail(err, ENAMETOOLONG, "root.path `%s`", root);
  char real[PATH_MAX];
  if (!realpath(joined, real)) return crib_fail(err, errno, "root.path `%s`", joined);
  if (snprintf(out, n, "%s", real) >= (int)n) return crib_fail(err, ENAMETOOLONG, "root `%s`", real);
  return 0;
}
