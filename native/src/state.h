/* The container state directory <root>/<id>/: state.json (written atomically:
 * crib-atomic-file.h), exec.fifo (present while the container is created but not started) and
 * exec-result.fifo (how start learns the process exec'd: exec-fifo.h). The status is derived,
 * never stored: created while exec.fifo exists and the init lives, running once it is gone,
 * stopped when the init is dead (or its pid was reused: the saved start time no longer matches).
 *
 *   create ──> created ──start──> running ──exit/kill──> stopped ──delete──> (gone)
 *                 └──────────────kill──────────────────────┘
 */
#ifndef CRIB_STATE_H
#define CRIB_STATE_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "crib-error.h"

#define CRIB_DEFAULT_ROOT "/run/crib/runtime"
#define CRIB_ID_MAX 1024

typedef enum { CRIB_CREATED, CRIB_RUNNING, CRIB_STOPPED } crib_status;

typedef struct crib_state {
  char id[CRIB_ID_MAX];
  char dir[PATH_MAX];       /* <root>/<id> */
  char bundle[PATH_MAX];
  char rootfs[PATH_MAX];
  char cgroup[PATH_MAX];    /* resolved cgroup path inside each hierarchy */
  pid_t pid;
  unsigned long long start_time; /* /proc/<pid>/stat field 22 */
  char created[64];         /* RFC 3339 */
  json_t *annotations;      /* owned; may be NULL */
} crib_state;

/* Container ids become directory names: [A-Za-z0-9_.-]+, not "." or "..". */
int crib_validate_id(const char *id, crib_err *err);

int crib_state_path(const char *root, const char *id, char *out, size_t n, crib_err *err);

int crib_state_write(const crib_state *st, crib_err *err);
/* NotFound-style error message "container `<id>` does not exist" when missing. */
int crib_state_read(const char *root, const char *id, crib_state *st, crib_err *err);
void crib_state_free(crib_state *st);

crib_status crib_state_status(const crib_state *st);
const char *crib_status_name(crib_status s);

/* Start time of pid from /proc/<pid>/stat; -1 if it is gone. zombie is set for state Z. */
int crib_proc_start_time(pid_t pid, unsigned long long *start, bool *zombie);

/* The OCI state JSON for `state` (caller frees). */
json_t *crib_state_json(const crib_state *st, crib_status s);

void crib_now_rfc3339(char *out, size_t n);

/* State JSON for hooks: status may be "creating", which crib_status does not have. */
json_t *crib_hook_state(const char *id, const char *bundle, pid_t pid, json_t *annotations,
                        const char *status);

#endif
