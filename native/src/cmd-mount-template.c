/* `mount-template [--remove]`: make the template mount namespace under --root, or remove it
 * (mount-template.h). The daemon makes it when it starts. */
#include <stdbool.h>

#include "cli.h"
#include "mount-template.h"

int crib_cmd_mount_template(const crib_globals *g, int argc, char **argv, crib_err *err) {
  bool remove = false;
  const crib_opt opts[] = {{"remove", 0, CRIB_OPT_FLAG, &remove}};
  int i = 0;
  if (crib_parse_flags(argc, argv, &i, opts, 1, err) < 0) return -1;
  if (i < argc) return crib_fail(err, 0, "unexpected argument `%s`", argv[i]);
  int rc = remove ? crib_mount_template_remove(g->root, err) : crib_mount_template_make(g->root, err);
  return rc < 0 ? -1 : 0;
}
