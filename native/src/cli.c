#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const crib_opt *find(const crib_opt *opts, size_t n, const char *name, size_t len, char alias) {
  for (size_t k = 0; k < n; k++) {
    if (alias ? opts[k].alias == alias
              : strlen(opts[k].name) == len && strncmp(opts[k].name, name, len) == 0)
      return &opts[k];
  }
  return NULL;
}

int crib_parse_flags(int argc, char **argv, int *i, const crib_opt *opts, size_t n,
                     crib_err *err) {
  while (*i < argc) {
    const char *a = argv[*i];
    if (strcmp(a, "--") == 0) {
      (*i)++;
      return 0;
    }
    if (a[0] != '-' || a[1] == '\0') return 0;
    const crib_opt *o;
    const char *value = NULL;
    if (a[1] == '-') {
      const char *name = a + 2;
      const char *eq = strchr(name, '=');
      size_t len = eq ? (size_t)(eq - name) : strlen(name);
      o = find(opts, n, name, len, 0);
      if (eq) value = eq + 1;
    } else {
      if (a[2] != '\0') return crib_fail(err, 0, "unknown flag `%s`", a);
      o = find(opts, n, NULL, 0, a[1]);
    }
    if (!o) return crib_fail(err, 0, "unknown flag `%s`", a);
    (*i)++;
    if (o->kind == CRIB_OPT_FLAG) {
      /* Accept --flag=true|false too. */
      *(bool *)o->out = !(value && (strcmp(value, "false") == 0 || strcmp(value, "0") == 0));
      continue;
    }
    if (!value) {
      if (*i >= argc) return crib_fail(err, 0, "flag `%s` needs a value", a);
      value = argv[(*i)++];
    }
    if (o->kind == CRIB_OPT_STRING) *(const char **)o->out = value;
    else json_array_append_new((json_t *)o->out, json_string(value));
  }
  return 0;
}

int crib_take_id(int argc, char **argv, int i, const char **id, crib_err *err) {
  if (i >= argc) return crib_fail(err, 0, "missing container id");
  if (i + 1 < argc) return crib_fail(err, 0, "unexpected argument `%s`", argv[i + 1]);
  *id = argv[i];
  return 0;
}

int crib_print_json(json_t *v, crib_err *err) {
  char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (!s) return crib_fail(err, 0, "serialize json");
  fputs(s, stdout);
  fputc('\n', stdout);
  free(s);
  return 0;
}
