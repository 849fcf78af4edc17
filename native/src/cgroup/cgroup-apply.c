/* linux.resources → cgroup files. This file checks the whole object first, so a typo in one
 * field fails before any limit has been written; the per-layout writers then translate. */
#include "cgroup-internal.h"

#include <errno.h>
#include <string.h>

int crib_cgi_device_rule_parse(json_t *rule, size_t index, crib_cgi_device_rule *out,
                               crib_err *err) {
  char where[64];
  snprintf(where, sizeof where, "linux.resources.devices[%zu]", index);
  if (!json_is_object(rule)) return crib_fail(err, 0, "%s: expected an object", where);
  bool present;
  if (crib_cgi_json_bool(rule, where, "allow", &present, &out->allow, err) < 0) return -1;
  if (!present) return crib_fail(err, 0, "%s.allow: missing", where);

  const char *type, *access;
  if (crib_cgi_json_string(rule, where, "type", &type, err) < 0) return -1;
  if (type == NULL || *type == '\0') type = "a";
  if (strlen(type) != 1 || strchr("abc", type[0]) == NULL)
    return crib_fail(err, 0, "%s.type \"%s\": must be a, b or c", where, type);
  out->type = type[0];

  if (crib_cgi_json_int(rule, where, "major", &present, &out->major, err) < 0) return -1;
  if (!present) out->major = -1;
  if (crib_cgi_json_int(rule, where, "minor", &present, &out->minor, err) < 0) return -1;
  if (!present) out->minor = -1;
  if (out->major < -1 || out->minor < -1 || out->major > 0xfffff || out->minor > 0xfffff)
    return crib_fail(err, 0, "%s: major/minor out of range", where);

  if (crib_cgi_json_string(rule, where, "access", &access, err) < 0) return -1;
  if (access == NULL || *access == '\0') access = "rwm";
  if (strlen(access) > 3 || strspn(access, "rwm") != strlen(access))
    return crib_fail(err, 0, "%s.access \"%s\": must be a combination of r, w and m", where,
                     access);
  snprintf(out->access, sizeof out->access, "%s", access);
  return 0;
}

static int check_ints(json_t *obj, const char *where, const char *const *keys, size_t n,
                      crib_err *err) {
  for (size_t i = 0; i < n; i++) {
    bool present;
    long long v;
    if (crib_cgi_json_int(obj, where, keys[i], &present, &v, err) < 0) return -1;
  }
  return 0;
}

/* Entries of blockIO.weightDevice / throttle*: objects with integer major, minor (required)
 * and the integer fields named in keys. */
static int check_device_entries(json_t *blkio, const char *key, const char *const *keys, size_t n,
                                crib_err *err) {
  json_t *list;
  if (crib_cgi_json_array(blkio, "linux.resources.blockIO", key, &list, err) < 0) return -1;
  size_t i;
  json_t *entry;
  json_array_foreach(list, i, entry) {
    char where[96];
    snprintf(where, sizeof where, "linux.resources.blockIO.%s[%zu]", key, i);
    if (!json_is_object(entry)) return crib_fail(err, 0, "%s: expected an object", where);
    static const char *const ids[] = {"major", "minor"};
    for (size_t k = 0; k < 2; k++) {
      bool present;
      long long v;
      if (crib_cgi_json_int(entry, where, ids[k], &present, &v, err) < 0) return -1;
      if (!present || v < 0) return crib_fail(err, 0, "%s.%s: missing or negative", where, ids[k]);
    }
    if (check_ints(entry, where, keys, n, err) < 0) return -1;
  }
  return 0;
}

/* A name that becomes part of a file name in the cgroup directory. */
static bool safe_file_part(const char *s) {
  return *s != '\0' && strchr(s, '/') == NULL && strstr(s, "..") == NULL;
}

static int validate(json_t *res, crib_err *err) {
  json_t *obj;
  bool present, b;

  if (crib_cgi_json_object(res, "linux.resources", "memory", &obj, err) < 0) return -1;
  if (obj != NULL) {
    static const char *const keys[] = {"limit", "reservation", "swap", "kernel", "kernelTCP",
                                       "swappiness"};
    if (check_ints(obj, "linux.resources.memory", keys, 6, err) < 0) return -1;
    if (crib_cgi_json_bool(obj, "linux.resources.memory", "disableOOMKiller", &present, &b, err) < 0)
      return -1;
  }

  if (crib_cgi_json_object(res, "linux.resources", "cpu", &obj, err) < 0) return -1;
  if (obj != NULL) {
    static const char *const keys[] = {"shares", "quota", "period", "realtimeRuntime",
                                       "realtimePeriod", "burst", "idle"};
    if (check_ints(obj, "linux.resources.cpu", keys, 7, err) < 0) return -1;
    const char *s;
    if (crib_cgi_json_string(obj, "linux.resources.cpu", "cpus", &s, err) < 0) return -1;
    if (crib_cgi_json_string(obj, "linux.resources.cpu", "mems", &s, err) < 0) return -1;
  }

  if (crib_cgi_json_object(res, "linux.resources", "pids", &obj, err) < 0) return -1;
  if (obj != NULL) {
    long long v;
    if (crib_cgi_json_int(obj, "linux.resources.pids", "limit", &present, &v, err) < 0) return -1;
  }

  if (crib_cgi_json_object(res, "linux.resources", "blockIO", &obj, err) < 0) return -1;
  if (obj != NULL) {
    static const char *const keys[] = {"weight", "leafWeight"};
    static const char *const rate[] = {"rate"};
    if (check_ints(obj, "linux.resources.blockIO", keys, 2, err) < 0) return -1;
    if (check_device_entries(obj, "weightDevice", keys, 2, err) < 0) return -1;
    static const char *const throttles[] = {"throttleReadBpsDevice", "throttleWriteBpsDevice",
                                            "throttleReadIOPSDevice", "throttleWriteIOPSDevice"};
    for (size_t i = 0; i < 4; i++)
      if (check_device_entries(obj, throttles[i], rate, 1, err) < 0) return -1;
  }

  json_t *list;
  if (crib_cgi_json_array(res, "linux.resources", "hugepageLimits", &list, err) < 0) return -1;
  size_t i;
  json_t *entry;
  json_array_foreach(list, i, entry) {
    char where[64];
    snprintf(where, sizeof where, "linux.resources.hugepageLimits[%zu]", i);
    if (!json_is_object(entry)) return crib_fail(err, 0, "%s: expected an object", where);
    const char *size;
    long long v;
    if (crib_cgi_json_string(entry, where, "pageSize", &size, err) < 0) return -1;
    if (size == NULL || !safe_file_part(size))
      return crib_fail(err, 0, "%s.pageSize \"%s\": must be a size such as 2MB", where,
                       size ? size : "");
    if (crib_cgi_json_int(entry, where, "limit", &present, &v, err) < 0) return -1;
    if (!present) return crib_fail(err, 0, "%s.limit: missing", where);
  }

  if (crib_cgi_json_array(res, "linux.resources", "devices", &list, err) < 0) return -1;
  json_array_foreach(list, i, entry) {
    crib_cgi_device_rule rule;
    if (crib_cgi_device_rule_parse(entry, i, &rule, err) < 0) return -1;
  }

  if (crib_cgi_json_object(res, "linux.resources", "unified", &obj, err) < 0) return -1;
  if (obj != NULL) {
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value) {
      if (!safe_file_part(key))
        return crib_fail(err, 0, "linux.resources.unified key \"%s\": must be a plain file name "
                                 "(no '/' or \"..\")", key);
      if (!json_is_string(value))
        return crib_fail(err, 0, "linux.resources.unified.%s: expected a string", key);
    }
  }

  if (crib_cgi_json_object(res, "linux.resources", "network", &obj, err) < 0) return -1;
  if (obj != NULL) {
    long long v;
    if (crib_cgi_json_int(obj, "linux.resources.network", "classID", &present, &v, err) < 0)
      return -1;
    if (crib_cgi_json_array(obj, "linux.resources.network", "priorities", &list, err) < 0)
      return -1;
    json_array_foreach(list, i, entry) {
      char where[64];
      const char *name;
      snprintf(where, sizeof where, "linux.resources.network.priorities[%zu]", i);
      if (!json_is_object(entry)) return crib_fail(err, 0, "%s: expected an object", where);
      if (crib_cgi_json_string(entry, where, "name", &name, err) < 0) return -1;
      if (name == NULL || strpbrk(name, " \n") != NULL)
        return crib_fail(err, 0, "%s.name: missing or not an interface name", where);
      if (crib_cgi_json_int(entry, where, "priority", &present, &v, err) < 0) return -1;
    }
  }
  return 0;
}

int crib_cg_check(json_t *resources, crib_err *err) {
  if (resources == NULL || json_is_null(resources)) return 0;
  if (!json_is_object(resources)) return crib_fail(err, 0, "linux.resources: expected an object");
  return validate(resources, err);
}

int crib_cg_apply(const crib_cgroup *cg, json_t *resources, crib_err *err) {
  if (resources == NULL || json_is_null(resources)) return 0;
  if (crib_cg_check(resources, err) < 0) return -1;
  int rc = cg->mode == CRIB_CG_V2 ? crib_cgi_apply_v2(cg, resources, err)
                                  : crib_cgi_apply_v1(cg, resources, err);
  if (rc < 0) crib_err_wrap(err, "apply resources to cgroup %s", cg->path);
  return rc;
}

int crib_cgi_write_hugetlb(const char *dir, json_t *limits, const char *suffix, crib_err *err) {
  size_t i;
  json_t *entry;
  json_array_foreach(limits, i, entry) {
    long long limit = 0;
    crib_cgi_int(entry, "limit", &limit);
    char file[NAME_MAX + 1];
    if (!CRIB_CGI_FMT(file, "hugetlb.%s.%s", crib_cgi_str(entry, "pageSize"), suffix))
      return crib_fail(err, ENAMETOOLONG, "hugepage size %s", crib_cgi_str(entry, "pageSize"));
    if (crib_cgi_write_ll(dir, file, limit, err) < 0) return -1;
  }
  return 0;
}
