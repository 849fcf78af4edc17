/* `list [--format table|json] [--quiet]`. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "state.h"

int crib_cmd_list(const crib_globals *g, int argc, char **argv, crib_err *err) {
  const char *format = "table";
  bool quiet = false;
  const crib_opt opts[] = {{"format", 'f', CRIB_OPT_STRING, &format},
                           {"quiet", 'q', CRIB_OPT_FLAG, &quiet}};
  int i = 0;
  if (crib_parse_flags(argc, argv, &i, opts, 2, err) < 0) return -1;
  if (i < argc) return crib_fail(err, 0, "unexpected argument `%s`", argv[i]);
  bool json = strcmp(format, "json") == 0;
  if (!json && strcmp(format, "table") != 0)
    return crib_fail(err, 0, "--format `%s`: expected table or json", format);
  json_t *arr = json_array();
  DIR *d = opendir(g->root);
  if (!d && errno != ENOENT) {
    json_decref(arr);
    return crib_fail(err, errno, "opendir `%s`", g->root);
  }
  struct dirent *de;
  while (d && (de = readdir(d)) != NULL) {
    if (de->d_name[0] == '.') continue;
    crib_state st;
    crib_err e;
    if (crib_state_read(g->root, de->d_name, &st, &e) < 0) continue; /* half-made: skip */
    json_array_append_new(arr, crib_state_json(&st, crib_state_status(&st)));
    crib_state_free(&st);
  }
  if (d) closedir(d);
  int rc = 0;
  if (json) {
    rc = crib_print_json(arr, err);
  } else if (quiet) {
    size_t k;
    json_t *v;
    json_array_foreach(arr, k, v) printf("%s\n", json_string_value(json_object_get(v, "id")));
  } else {
    printf("%-24s %-8s %-10s %-40s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
    size_t k;
    json_t *v;
    json_array_foreach(arr, k, v) {
      printf("%-24s %-8lld %-10s %-40s %s\n", json_string_value(json_object_get(v, "id")),
             (long long)json_integer_value(json_object_get(v, "pid")),
             json_string_value(json_object_get(v, "status")),
             json_string_value(json_object_get(v, "bundle")),
             json_string_value(json_object_get(v, "created")));
    }
  }
  json_decref(arr);
  return rc < 0 ? -1 : 0;
}
