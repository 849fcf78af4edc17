/* File access for cgroupfs knobs. Every failure names the file and the value, because a failed
 * write is the only clue an operator gets (EINVAL on memory.limit_in_bytes, EBUSY on
 * subtree_control, ENOENT for a knob this kernel lacks). */
#include "cgroup-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int crib_cgi_write(const char *dir, const char *file, const char *value, crib_err *err) {
  char path[PATH_MAX];
  if (!CRIB_CGI_FMT(path, "%s/%s", dir, file))
    return crib_fail(err, ENAMETOOLONG, "open/write %s/%s \"%s\"", dir, file, value);
  /* O_TRUNC matters only for plain files (prepared test trees); cgroupfs ignores it. */
  int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return crib_fail(err, errno, "open/write %s \"%s\"", path, value);
  size_t len = strlen(value);
  /* One write(2): cgroupfs parses each write as a whole value. */
  ssize_t n = write(fd, value, len);
  int saved = errno;
  close(fd);
  if (n < 0) return crib_fail(err, saved, "open/write %s \"%s\"", path, value);
  if ((size_t)n != len) return crib_fail(err, EIO, "open/write %s \"%s\" (short write)", path, value);
  return 0;
}

int crib_cgi_write_ll(const char *dir, const char *file, long long value, crib_err *err) {
  char buf[32];
  snprintf(buf, sizeof buf, "%lld", value);
  return crib_cgi_write(dir, file, buf, err);
}

int crib_cgi_read(const char *dir, const char *file, char *buf, size_t cap, crib_err *err) {
  char path[PATH_MAX];
  if (!CRIB_CGI_FMT(path, "%s/%s", dir, file))
    return crib_fail(err, ENAMETOOLONG, "open %s/%s", dir, file);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return crib_fail(err, errno, "open %s", path);
  size_t len = 0;
  while (len + 1 < cap) {
    ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      close(fd);
      return crib_fail(err, saved, "read %s", path);
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = '\0';
  while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ')) buf[--len] = '\0';
  return 0;
}

int crib_cgi_read_all(const char *path, char **out, crib_err *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return crib_fail(err, errno, "open %s", path);
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  if (buf == NULL) {
    close(fd);
    return crib_fail(err, ENOMEM, "read %s", path);
  }
  for (;;) {
    if (len + 1 >= cap) {
      char *bigger = realloc(buf, cap * 2);
      if (bigger == NULL) {
        free(buf);
        close(fd);
        return crib_fail(err, ENOMEM, "read %s", path);
      }
      buf = bigger;
      cap *= 2;
    }
    ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n < 0) {
      if (errno == EINTR) continue;
      int saved = errno;
      free(buf);
      close(fd);
      return crib_fail(err, saved, "read %s", path);
    }
    if (n == 0) break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = '\0';
  *out = buf;
  return 0;
}

bool crib_cgi_exists(const char *dir, const char *file) {
  char path[PATH_MAX];
  if (!CRIB_CGI_FMT(path, "%s/%s", dir, file)) return false;
  return access(path, F_OK) == 0;
}

bool crib_cgi_keyed_value(const char *body, const char *key, long long *value) {
  size_t klen = strlen(key);
  for (const char *line = body; line != NULL && *line != '\0';) {
    if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
      char *end;
      errno = 0;
      long long v = strtoll(line + klen + 1, &end, 10);
      if (errno == 0 && end != line + klen + 1) {
        *value = v;
        return true;
      }
    }
    line = strchr(line, '\n');
    if (line != NULL) line++;
  }
  return false;
}

long long crib_cgi_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void crib_cgi_sleep_ms(long ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void crib_cgi_warn(const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "crib-runtime: warning: %s\n", msg);
}
