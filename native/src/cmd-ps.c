/* `ps [--format table|json] ID`: the pids in the container's cgroup. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "container.h"

int crib_cmd_ps(const crib_globals *g, int argc, char **argv, crib_err *err) {
  const char *format = "table";
  const crib_opt opts[] = {{"format", 'f', CRIB_OPT_STRING, &format}};
  int i = 0;
  const char *id;
  if (crib_parse_flags(argc, argv, &i, opts, 1, err) < 0) return -1;
  if (i < argc) id = argv[i];
  else return crib_fail(err, 0, "missing container id");
  crib_state st;
  if (crib_state_read(g->root, id, &st, err) < 0) return -1;
  crib_cgroup cg;
  pid_t *pids = NULL;
  size_t n = 0;
  int rc = -1;
  if (crib_container_cgroup(&st, &cg, err) < 0 || crib_cg_pids(&cg, &pids, &n, err) < 0) goto out;
  if (strcmp(format, "json") == 0) {
    json_t *arr = json_array();
    for (size_t k = 0; k < n; k++) json_array_append_new(arr, json_integer(pids[k]));
    rc = crib_print_json(arr, err);
    json_decref(arr);
    if (rc < 0) goto out;
  } else {
    printf("PID\n");
    for (size_t k = 0; k < n; k++) printf("%d\n", (int)pids[k]);
  }
  rc = 0;
out:
  free(pids);
  crib_state_free(&st);
  return rc;
}
