/* Typed reads of linux.resources. The spec comes from the daemon, but `crib-runtime update`
 * also takes hand-written JSON, so a wrong type fails naming the exact field instead of being
 * read as 0. */
#include "cgroup-internal.h"

int crib_cgi_json_int(json_t *obj, const char *where, const char *key, bool *present,
                      long long *value, crib_err *err) {
  json_t *v = json_object_get(obj, key);
  *present = false;
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_integer(v)) return crib_fail(err, 0, "%s.%s: expected an integer", where, key);
  *present = true;
  *value = (long long)json_integer_value(v);
  return 0;
}

int crib_cgi_json_bool(json_t *obj, const char *where, const char *key, bool *present,
                       bool *value, crib_err *err) {
  json_t *v = json_object_get(obj, key);
  *present = false;
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_boolean(v)) return crib_fail(err, 0, "%s.%s: expected a boolean", where, key);
  *present = true;
  *value = json_is_true(v);
  return 0;
}

int crib_cgi_json_string(json_t *obj, const char *where, const char *key, const char **value,
                         crib_err *err) {
  json_t *v = json_object_get(obj, key);
  *value = NULL;
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_string(v)) return crib_fail(err, 0, "%s.%s: expected a string", where, key);
  *value = json_string_value(v);
  return 0;
}

int crib_cgi_json_object(json_t *obj, const char *where, const char *key, json_t **value,
                         crib_err *err) {
  json_t *v = json_object_get(obj, key);
  *value = NULL;
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_object(v)) return crib_fail(err, 0, "%s.%s: expected an object", where, key);
  *value = v;
  return 0;
}

int crib_cgi_json_array(json_t *obj, const char *where, const char *key, json_t **value,
                        crib_err *err) {
  json_t *v = json_object_get(obj, key);
  *value = NULL;
  if (v == NULL || json_is_null(v)) return 0;
  if (!json_is_array(v)) return crib_fail(err, 0, "%s.%s: expected an array", where, key);
  *value = v;
  return 0;
}
