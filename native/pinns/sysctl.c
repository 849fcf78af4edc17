/* Pod sysctls. Only keys namespaced by a namespace this run creates are accepted, because writing
 * any other key from here would change the host for every pod. /proc/sys/net and the IPC keys
 * resolve to the namespaces of the process that opens them, i.e. the child that unshared. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pinns.h"

/* "net.ipv4.ip_forward" -> "net/ipv4/ip_forward". A key that already has slashes is taken as a
 * path, which is how an interface name with a dot ("eth0.100") is written. */
static int key_to_path(const char *key, char *out, size_t size, crib_err *err) {
  size_t len = strlen(key);
  if (len == 0 || len >= size) return crib_fail(err, 0, "sysctl key `%s`: bad length", key);
  if (key[0] == '.' || key[0] == '/' || strstr(key, "..") != NULL)
    return crib_fail(err, 0, "sysctl key `%s`: not a sysctl name", key);
  bool slashes = strchr(key, '/') != NULL;
  for (size_t i = 0; i <= len; i++) {
    char c = key[i];
    if (c != '\0' && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '_' || c == '-' || c == '.' || c == '/' || c == '@' || c == ':'))
      return crib_fail(err, 0, "sysctl key `%s`: character `%c` not allowed", key, c);
    out[i] = (!slashes && c == '.') ? '/' : c;
  }
  if (strstr(out, "/./") != NULL || strstr(out, "//") != NULL)
    return crib_fail(err, 0, "sysctl key `%s`: not a sysctl name", key);
  return 0;
}

static bool has_prefix(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

int pinns_sysctl_kind(const char *key, crib_err *err) {
  char path[256];
  if (key_to_path(key, path, sizeof path, err) < 0) return -1;
  if (has_prefix(path, "net/")) return 0;
  if (has_prefix(path, "kernel/shm") || has_prefix(path, "kernel/msg") ||
      has_prefix(path, "kernel/sem") || has_prefix(path, "fs/mqueue/"))
    return 1;
  if (strcmp(path, "kernel/hostname") == 0 || strcmp(path, "kernel/domainname") == 0) return 2;
  return crib_fail(err, 0,
                   "sysctl `%s` is not namespaced (only net.*, kernel.shm*, kernel.msg*, "
                   "kernel.sem*, fs.mqueue.* and kernel.hostname/domainname are): refusing to "
                   "change the host",
                   key);
}

int pinns_sysctl_apply(const char *assignment, crib_err *err) {
  const char *eq = strchr(assignment, '=');
  if (eq == NULL) return crib_fail(err, 0, "sysctl `%s`: expected KEY=VALUE", assignment);
  char key[256], rel[256], path[300];
  size_t klen = (size_t)(eq - assignment);
  if (klen >= sizeof key) return crib_fail(err, ENAMETOOLONG, "sysctl `%s`", assignment);
  memcpy(key, assignment, klen);
  key[klen] = '\0';
  if (key_to_path(key, rel, sizeof rel, err) < 0) return -1;
  snprintf(path, sizeof path, "/proc/sys/%s", rel);
  const char *value = eq + 1;
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return crib_fail(err, errno, "sysctl %s: open `%s`", key, path);
  if (crib_write_all(fd, value, strlen(value)) < 0) {
    int saved = errno;
    (void)close(fd); /* reporting the write failure */
    return crib_fail(err, saved, "sysctl %s: write `%s`", key, value);
  }
  if (close(fd) < 0) return crib_fail(err, errno, "sysctl %s: close `%s`", key, path);
  return 0;
}
