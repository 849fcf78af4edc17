/* Command-line plumbing shared by the verbs: runc-shaped flags (--name value, --name=value,
 * single-letter aliases), parsed up to the first positional argument or "--". */
#ifndef CRIB_CLI_H
#define CRIB_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "crib-error.h"

typedef struct crib_globals {
  const char *root;
  const char *log;        /* also write errors here (runc's --log) */
  const char *log_format; /* "text" | "json" */
  const char *criu;       /* criu binary for checkpoint/restore (runc's --criu); NULL: PATH */
} crib_globals;

typedef enum { CRIB_OPT_FLAG, CRIB_OPT_STRING, CRIB_OPT_LIST } crib_opt_kind;

typedef struct crib_opt {
  const char *name;  /* without dashes */
  char alias;        /* single-letter alias or 0 */
  crib_opt_kind kind;
  void *out;         /* bool*, const char**, or json_t* (array, for LIST) */
} crib_opt;

/* Parse flags from argv[*i] on; stops at the first positional argument (left at argv[*i]). */
int crib_parse_flags(int argc, char **argv, int *i, const crib_opt *opts, size_t n,
                     crib_err *err);

/* Exactly one positional: the container id. */
int crib_take_id(int argc, char **argv, int i, const char **id, crib_err *err);

/* The verbs: return the process exit code, or -1 with err set. */
int crib_cmd_create(const crib_globals *g, int argc, char **argv, crib_err *err);
int crib_cmd_run(const crib_globals *g, int argc, char **argv, crib_err *err);
int crib_cmd_start(const crib_globals *g, int argc, char **argv, crib_err *err);
int crib_cmd_state(const crib_globals *g, int argc, char **argv, crib_err *err);
int crib_cmd_kill(const crib_globals *g, int argc, char **argv, crib_err *err);
int crib_cmd_delete(const crib_globals *g, int argc, char **argv, crib_err *err);
int crib_cmd_mount_template(const crib_globals *g, int argc, char **argv, crib_err *err);
int crib_cmd_exec(const crib_globals *g, int argc, char **argv, crib_err *err);
int crib_cmd_list(const crib_globals *g, int argc, char **argv, crib_err *err);
int crib_cmd_features(const crib_globals *g, int argc, char **argv, crib_err *err);
int crib_cmd_update(const crib_globals *g, int argc, char **argv, crib_err *err);
int crib_cmd_ps(const crib_globals *g, int argc, char **argv, crib_err *err);
int crib_cmd_checkpoint(const crib_globals *g, int argc, char **argv, crib_err *err);
int crib_cmd_restore(const crib_globals *g, int argc, char **argv, crib_err *err);
int crib_cmd_pause(const crib_globals *g, int argc, char **argv, crib_err *err);
int crib_cmd_resume(const crib_globals *g, int argc, char **argv, crib_err *err);

/* Print a json value to stdout (indented), with a newline. */
int crib_print_json(json_t *v, crib_err *err);

#endif
