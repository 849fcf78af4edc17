/* The uid/gid maps of a pod's user namespace, as kubelet allocated them. They are checked here
 * as well as in the daemon because crib-pinns writes them as host root: a map is bounded in
 * lines, every range fits in 32 bits, no two ranges overlap on either side (the kernel refuses
 * that too, but with a bare EINVAL), the pod's root (id 0 inside) is mapped, and the host's
 * root (id 0 outside) never is: a pod holding host uid 0 would own every root-owned file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pinns.h"

#define ID_LIMIT 4294967296UL /* ids are 32 bits; (u32)-1 itself is invalid, checked below */

static int parse_id(const char *s, char **end, unsigned long *out) {
  if (*s < '0' || *s > '9') return -1;
  errno = 0;
  unsigned long long v = strtoull(s, end, 10);
  if (errno != 0 || v >= ID_LIMIT) return -1;
  *out = (unsigned long)v;
  return 0;
}

static bool overlap(unsigned long a, unsigned long alen, unsigned long b, unsigned long blen) {
  return a < b + blen && b < a + alen;
}

int pinns_id_map_add(struct id_maps *maps, const char *text, const char *what, crib_err *err) {
  if (maps->n == PINNS_MAX_ID_MAPS)
    return crib_fail(err, 0, "%s: more than %d ranges", what, PINNS_MAX_ID_MAPS);
  struct id_map m;
  char *end = NULL;
  if (parse_id(text, &end, &m.inside) < 0 || *end != ':' || parse_id(end + 1, &end, &m.outside) < 0 ||
      *end != ':' || parse_id(end + 1, &end, &m.count) < 0 || *end != '\0')
    return crib_fail(err, 0, "%s `%s`: expected INSIDE:OUTSIDE:COUNT with 32-bit ids", what, text);
  if (m.count == 0) return crib_fail(err, 0, "%s `%s`: an empty range", what, text);
  /* The last id, 4294967295, is (uid_t)-1 and cannot be mapped. */
  if (m.inside + m.count > ID_LIMIT - 1 || m.outside + m.count > ID_LIMIT - 1)
    return crib_fail(err, 0, "%s `%s`: the range passes id 4294967294", what, text);
  for (size_t i = 0; i < maps->n; i++) {
    const struct id_map *o = &maps->m[i];
    if (overlap(m.inside, m.count, o->inside, o->count) || overlap(m.outside, m.count, o->outside, o->count))
      return crib_fail(err, 0, "%s `%s` overlaps `%lu:%lu:%lu`", what, text, o->inside, o->outside, o->count);
  }
  maps->m[maps->n++] = m;
  return 0;
}

int pinns_id_maps_check(const struct id_maps *maps, const char *what, crib_err *err) {
  bool root_inside = false;
  for (size_t i = 0; i < maps->n; i++) {
    const struct id_map *m = &maps->m[i];
    if (m->inside == 0) root_inside = true;
    if (m->outside == 0)
      return crib_fail(err, 0, "%s `%lu:%lu:%lu` maps the host's id 0: refusing to give a pod the host's root",
                       what, m->inside, m->outside, m->count);
  }
  if (!root_inside) return crib_fail(err, 0, "%s: id 0 inside the pod must be mapped", what);
  return 0;
}

int pinns_id_maps_format(const struct id_maps *maps, char *buf, size_t size, crib_err *err) {
  size_t off = 0;
  for (size_t i = 0; i < maps->n; i++) {
    int n = snprintf(buf + off, size - off, "%lu %lu %lu\n", maps->m[i].inside, maps->m[i].outside, maps->m[i].count);
    if (n < 0 || (size_t)n >= size - off) return crib_fail(err, E2BIG, "id map of %zu lines", maps->n);
    off += (size_t)n;
  }
  return (int)off;
}
