/* config.json: loading, validation and typed accessors over jansson. The runtime keeps the spec
 * as a json_t and reads fields where they are used; crib_spec_load checks the shape of every
 * field the runtime reads so later code can trust types. */
#ifndef CRIB_SPEC_H
#define CRIB_SPEC_H

#include <jansson.h>
#include <stdbool.h>

#include "crib-error.h"

/* json_load_file, but the file is opened O_CLOEXEC (jansson's own open is not): no fd of ours
 * may ever survive into a container process. On open failure jerr reads like jansson's
 * ("unable to open <path>: <reason>", line -1). */
json_t *crib_json_load_path(const char *path, json_error_t *jerr);

/* Load <bundle>/config.json and validate it. */
json_t *crib_spec_load(const char *bundle, crib_err *err);

/* Parse a process object (config.json's or exec --process) and check its shape. */
int crib_spec_check_process(json_t *process, const char *where, crib_err *err);

/* Accessors: NULL / def when absent. */
const char *crib_json_str(json_t *obj, const char *key);
long long crib_json_int(json_t *obj, const char *key, long long def);
bool crib_json_bool(json_t *obj, const char *key, bool def);

/* Path of the spec's root, absolute (root.path resolved against bundle). */
int crib_spec_rootfs(json_t *spec, const char *bundle, char *out, size_t n, crib_err *err);

#endif
