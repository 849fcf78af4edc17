/* `start ID`: release a created container to execve its process. */
#include "cli.h"
#include "container.h"

int crib_cmd_start(const crib_globals *g, int argc, char **argv, crib_err *err) {
  const char *id;
  if (crib_take_id(argc, argv, 0, &id, err) < 0) return -1;
  return crib_container_start(g->root, id, err) < 0 ? -1 : 0;
}
