/* Helpers shared by the cgroup library's files; not part of its interface. The library links
 * alone (the cgroup sources + common/error.c), so it carries its own small file helpers instead of
 * reaching into the runtime's. Names start with crib_cgi_ to stay clear of the runtime's. */
#ifndef CRIB_CGROUP_INTERNAL_H
#define CRIB_CGROUP_INTERNAL_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cgroup.h"

/* snprintf into a char array, true when it fit. */
#define CRIB_CGI_FMT(buf, ...) (snprintf((buf), sizeof(buf), __VA_ARGS__) < (int)sizeof(buf))

/* Write value to dir/file (no O_CREAT: a missing file means the kernel lacks the knob).
 * Fails with `open/write <dir>/<file> "<value>": <strerror>`. */
int crib_cgi_write(const char *dir, const char *file, const char *value, crib_err *err);
/* crib_cgi_write of a number. */
int crib_cgi_write_ll(const char *dir, const char *file, long long value, crib_err *err);

/* Read dir/file into buf (cap bytes), NUL-terminated, trailing newline removed. */
int crib_cgi_read(const char *dir, const char *file, char *buf, size_t cap, crib_err *err);

/* Read a whole file of unknown size (cgroup.procs) into a malloc'd NUL-terminated string. */
int crib_cgi_read_all(const char *path, char **out, crib_err *err);

/* True when dir/file exists (used to pick between kernel knobs: memsw, bfq, cgroup.kill). */
bool crib_cgi_exists(const char *dir, const char *file);

/* Find "<key> <number>" on its own line in a flat-keyed file body (memory.events,
 * memory.oom_control, cgroup.events); false when the key is absent. */
bool crib_cgi_keyed_value(const char *body, const char *key, long long *value);

/* CLOCK_MONOTONIC in milliseconds, for the library's deadlines (freezing, removal retries). */
long long crib_cgi_now_ms(void);
void crib_cgi_sleep_ms(long ms);

/* Print a warning on stderr: things the library cannot enforce but that must not fail a
 * container (e.g. device rules on v2 without BPF). */
void crib_cgi_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The v1 hierarchies mounted under cg->root, one entry per mount (a "cpu" symlink to
 * "cpu,cpuacct" counts once). Names are the directory entries under root. */
#define CRIB_CGI_MAX_HIERARCHIES 24
typedef struct {
  size_t n;
  char name[CRIB_CGI_MAX_HIERARCHIES][NAME_MAX + 1];
} crib_cgi_hierarchies;

int crib_cgi_v1_hierarchies(const crib_cgroup *cg, crib_cgi_hierarchies *h, crib_err *err);

/* out = <root>/<hierarchy holding controller><cg->path>; -1 (with a message naming the
 * controller) when no hierarchy under root carries it. */
int crib_cgi_v1_dir(const crib_cgroup *cg, const char *controller, char *out, size_t cap,
                    crib_err *err);

/* Call fn on every directory of the cgroup (one per v1 hierarchy, or the single v2 one), for
 * the operations that act on all of them (enter, destroy). Every directory is visited even
 * after a failure; the first error is the one reported. */
typedef int (*crib_cgi_dir_fn)(const char *dir, void *arg, crib_err *err);
int crib_cgi_for_each_dir(const crib_cgroup *cg, crib_cgi_dir_fn fn, void *arg, crib_err *err);

/* The directory whose cgroup.procs is authoritative for listing and signalling processes:
 * the v2 dir, or the first present of pids/freezer/memory/cpu/systemd on v1. */
int crib_cgi_procs_dir(const crib_cgroup *cg, char *out, size_t cap, crib_err *err);

/* Apply linux.resources to one layout (cgroup-apply-v1.c / cgroup-apply-v2.c). resources has
 * been type-checked by crib_cg_apply. */
int crib_cgi_apply_v1(const crib_cgroup *cg, json_t *resources, crib_err *err);
int crib_cgi_apply_v2(const crib_cgroup *cg, json_t *resources, crib_err *err);
/* linux.resources.hugepageLimits into dir/hugetlb.<pageSize>.<suffix> (v1 "limit_in_bytes",
 * v2 "max"). */
int crib_cgi_write_hugetlb(const char *dir, json_t *limits, const char *suffix, crib_err *err);

/* Typed reads of OCI JSON. *present says whether key was there (null counts as absent); a value
 * of the wrong type fails naming "<where>.<key>". */
int crib_cgi_json_int(json_t *obj, const char *where, const char *key, bool *present,
                      long long *value, crib_err *err);
int crib_cgi_json_bool(json_t *obj, const char *where, const char *key, bool *present,
                       bool *value, crib_err *err);
int crib_cgi_json_string(json_t *obj, const char *where, const char *key, const char **value,
                         crib_err *err);
/* Reads for the writers, after validation: absent, null and (already refused) wrong types all
 * read as "not set". json_object_get(NULL, ...) is NULL, so obj may be NULL. */
static inline bool crib_cgi_int(json_t *obj, const char *key, long long *value) {
  json_t *v = json_object_get(obj, key);
  if (!json_is_integer(v)) return false;
  *value = (long long)json_integer_value(v);
  return true;
}
static inline const char *crib_cgi_str(json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

/* obj[key] when it is an object (NULL when absent/null), failing on another type. */
int crib_cgi_json_object(json_t *obj, const char *where, const char *key, json_t **value,
                         crib_err *err);
int crib_cgi_json_array(json_t *obj, const char *where, const char *key, json_t **value,
                        crib_err *err);

/* Device rules (linux.resources.devices) → v1 "type major:minor access" lines, shared by the
 * v1 writer and the v2 BPF program builder. */
typedef struct {
  bool allow;
  char type;        /* 'a', 'b' or 'c' */
  long long major;  /* -1 = any */
  long long minor;  /* -1 = any */
  char access[4];   /* subset of "rwm" */
} crib_cgi_device_rule;

int crib_cgi_device_rule_parse(json_t *rule, size_t index, crib_cgi_device_rule *out,
                               crib_err *err);

/* Attach a BPF_PROG_TYPE_CGROUP_DEVICE program enforcing rules to the v2 cgroup at dir
 * (cgroup-devices-v2.c). */
int crib_cgi_devices_v2(const char *dir, json_t *devices, crib_err *err);

#endif
