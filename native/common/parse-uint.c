#include "crib-parse-uint.h"

#include <errno.h>
#include <stdlib.h>

int crib_parse_uint(const char *text, unsigned long min, unsigned long max, unsigned long *out) {
  if (*text < '0' || *text > '9') return -1;
  errno = 0;
  char *end;
  unsigned long v = strtoul(text, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) return -1;
  *out = v;
  return 0;
}
