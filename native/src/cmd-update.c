/* `update --resources FILE|- ID`: apply linux.resources to a live container's cgroup. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "spec.h"
#include "container.h"

int crib_cmd_update(const crib_globals *g, int argc, char **argv, crib_err *err) {
  const char *file = NULL;
  const crib_opt opts[] = {{"resources", 'r', CRIB_OPT_STRING, &file}};
  int i = 0;
  const char *id;
  if (crib_parse_flags(argc, argv, &i, opts, 1, err) < 0) return -1;
  if (crib_take_id(argc, argv, i, &id, err) < 0) return -1;
  if (!file) return crib_fail(err, 0, "update: --resources FILE|- is required");
  json_error_t jerr;
  json_t *res = strcmp(file, "-") == 0 ? json_loadf(stdin, 0, &jerr) : crib_json_load_path(file, &jerr);
  if (!json_is_object(res)) {
    json_decref(res);
    return crib_fail(err, 0, "--resources `%s`: expected a JSON object (%s)", file, jerr.text);
  }
  crib_state st;
  int rc = -1;
  if (crib_state_read(g->root, id, &st, err) < 0) goto out_res;
  if (crib_state_status(&st) == CRIB_STOPPED) {
    crib_fail(err, 0, "container `%s` is stopped: nothing to update", id);
    goto out;
  }
  crib_cgroup cg;
  if (crib_container_cgroup(&st, &cg, err) < 0) goto out;
  if (crib_cg_apply(&cg, res, err) < 0) {
    crib_err_wrap(err, "update `%s`", id);
    goto out;
  }
  rc = 0;
out:
  crib_state_free(&st);
out_res:
  json_decref(res);
  return rc;
}
