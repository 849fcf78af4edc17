/* `state ID`: the OCI state JSON. */
#include "cli.h"
#include "state.h"

int crib_cmd_state(const crib_globals *g, int argc, char **argv, crib_err *err) {
  const char *id;
  if (crib_take_id(argc, argv, 0, &id, err) < 0) return -1;
  crib_state st;
  if (crib_state_read(g->root, id, &st, err) < 0) return -1;
  json_t *o = crib_state_json(&st, crib_state_status(&st));
  int rc = o ? crib_print_json(o, err) : crib_fail(err, 0, "build state json");
  json_decref(o);
  crib_state_free(&st);
  return rc < 0 ? -1 : 0;
}
