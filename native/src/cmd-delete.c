/* `delete [--force] ID`. */
#include "cli.h"
#include "container.h"

int crib_cmd_delete(const crib_globals *g, int argc, char **argv, crib_err *err) {
  bool force = false;
  const crib_opt opts[] = {{"force", 'f', CRIB_OPT_FLAG, &force}};
  int i = 0;
  const char *id;
  if (crib_parse_flags(argc, argv, &i, opts, 1, err) < 0) return -1;
  if (crib_take_id(argc, argv, i, &id, err) < 0) return -1;
  return crib_container_delete(g->root, id, force, err) < 0 ? -1 : 0;
}
