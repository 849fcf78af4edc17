/* Driving the `criu` binary for `checkpoint` and `restore` (runc's verbs): building its command
 * line, running it, and turning a failure into a message that names criu's own last error line
 * and the log file that has the rest. criu is found as --criu PATH (runc's global flag) or as
 * `criu` in PATH.
 *
 * Besides CRIU's images, a checkpoint dir holds two files of ours, written after a dump that
 * succeeded and read by restore:
 *   descriptors.json   what fds 0, 1 and 2 of the init were (readlink of /proc/<pid>/fd/N, e.g.
 *                      "pipe:[1234]" or "/dev/null"), as runc writes it: restore hands its own
 *                      stdio to criu in their place (--inherit-fd), so the restored process
 *                      writes to its new monitor's pipes.
 *   crib-criu.json     {"shellJob": B, "netns": "KEY"|null, "externalMounts": [DEST...]}: what
 *                      dump declared outside the container (its session, the pod's network
 *                      namespace, every bind mount by destination), which restore must supply
 *                      again from the new bundle. */
#ifndef CRIB_CRIU_H
#define CRIB_CRIU_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "crib-error.h"
#include "cgroup/cgroup.h"

/* The key under which the pod's network namespace is declared external. */
#define CRIB_CRIU_NETNS_KEY "crib-netns"
#define CRIB_CRIU_MAX_ARGS 256

typedef struct crib_criu_argv {
  char *argv[CRIB_CRIU_MAX_ARGS + 1];
  size_t n;
  bool overflow;
} crib_criu_argv;

/* A mount of the spec that is a bind mount (type "bind", or a "bind"/"rbind" option): what
 * checkpoint declares external, by destination, and restore binds from the new bundle. */
bool crib_criu_is_bind(json_t *m);

/* Appends one argument (copied); an argv that overflows is refused by crib_criu_run. */
void crib_criu_arg(crib_criu_argv *a, const char *arg);
void crib_criu_argf(crib_criu_argv *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void crib_criu_argv_free(crib_criu_argv *a);

/* Runs criu with a's arguments (a->argv[0] is set here from criu_path or "criu"): the child
 * dies with us (PR_SET_PDEATHSIG: a caller that kills us on its timeout kills criu too), keeps
 * the fds in keep (cleared of close-on-exec) and our stdio, and is moved into cg first when cg
 * is not NULL (so what it restores starts in the container's cgroup). A criu that fails is
 * reported as `criu <verb> failed (exit N): <its first "Error" line> [... <its last>]; log: <log_path>`. */
int crib_criu_run(const char *criu_path, crib_criu_argv *a, const char *verb, const char *log_path,
                  const crib_cgroup *cg, const int *keep, size_t nkeep, crib_err *err);

#endif
