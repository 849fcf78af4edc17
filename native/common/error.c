#include "crib-error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int crib_fail(crib_err *err, int errnum, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if (errnum != 0 && (size_t)n < sizeof err->msg)
    snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", strerror(errnum));
  err->errnum = errnum;
  return -1;
}

int crib_err_wrap(crib_err *err, const char *fmt, ...) {
  char prefix[512];
  char old[sizeof err->msg];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, err->msg, sizeof old);
  snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
  return -1;
}

void crib_err_print(const char *prog, const crib_err *err) {
  fprintf(stderr, "%s: %s\n", prog, err->msg);
}
