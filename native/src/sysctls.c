#include "sysctls.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "procfs.h"

/* "net.ipv4.ip_forward" -> "sys/net/ipv4/ip_forward"; a key with slashes is already a path
 * (how an interface name with a dot is written: "net/ipv4/conf/eth0.100/forwarding"), as for
 * crib-pinns' pod sysctls. */
static int key_path(const char *key, char *out, size_t n, crib_err *err) {
  size_t len = strlen(key);
  if (len == 0 || len + 5 >= n) return crib_fail(err, 0, "linux.sysctl: key `%s` has a bad length", key);
  if (key[0] == '.' || key[0] == '/' || strstr(key, "..") || strstr(key, "//") || strstr(key, "/./") ||
      key[len - 1] == '/' || key[len - 1] == '.')
    return crib_fail(err, 0, "linux.sysctl: `%s` is not a sysctl name", key);
  bool slashes = strchr(key, '/') != NULL;
  memcpy(out, "sys/", 4);
  for (size_t i = 0; i <= len; i++) {
    char c = key[i];
    if (c != '\0' && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '_' || c == '-' || c == '.' || c == '/' || c == '@' || c == ':'))
      return crib_fail(err, 0, "linux.sysctl: key `%s` has the character `%c`, which no sysctl name has",
                       key, c);
    out[4 + i] = (!slashes && c == '.') ? '/' : c;
  }
  return 0;
}

int crib_sysctls_apply(json_t *spec, int proc, crib_err *err) {
  const char *key;
  json_t *val;
  json_object_foreach(json_object_get(json_object_get(spec, "linux"), "sysctl"), key, val) {
    if (!json_is_string(val)) return crib_fail(err, 0, "linux.sysctl.%s: expected a string", key);
    char path[512];
    if (key_path(key, path, sizeof path, err) < 0) return -1;
    const char *v = json_string_value(val);
    if (crib_procfs_write(proc, path, v, strlen(v), err) < 0)
      return crib_err_wrap(err, "linux.sysctl `%s`", key);
  }
  return 0;
}
