/* Parsing one control command: a flat JSON object on one line, e.g.
 *   {"cmd":"resize","rows":24,"cols":80}
 * Values may be strings (printable ASCII, the usual escapes), integers, true, false or null;
 * nested objects and arrays, fractions, duplicate keys and anything after the closing brace are
 * refused with a reason. The daemon is the only client, so this is strict rather than lenient. */
#include "monitor.h"

#include <stdio.h>
#include <string.h>

struct parser {
  const char *s;
  size_t len, pos;
  char *why;
  size_t why_len;
};

static int fail(struct parser *p, const char *what) {
  snprintf(p->why, p->why_len, "%s at byte %zu", what, p->pos);
  return -1;
}

/* strchr finds the terminating NUL too: a NUL byte in the line must not match anything. */
static bool one_of(const char *set, char c) { return c != '\0' && strchr(set, c) != NULL; }

static void skip_ws(struct parser *p) {
  while (p->pos < p->len && one_of(" \t\r\n", p->s[p->pos])) p->pos++;
}

static int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int parse_string(struct parser *p, char *out, size_t cap) {
  if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "expected a string");
  p->pos++;
  size_t n = 0;
  while (p->pos < p->len) {
    char c = p->s[p->pos++];
    if (c == '"') {
      out[n] = '\0';
      return 0;
    }
    if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
      return fail(p, "non-printable or non-ASCII byte in a string");
    if (c == '\\') {
      if (p->pos >= p->len) break;
      char e = p->s[p->pos++];
      switch (e) {
      case '"': case '\\': case '/': c = e; break;
      case 'b': c = '\b'; break;
      case 'f': c = '\f'; break;
      case 'n': c = '\n'; break;
      case 'r': c = '\r'; break;
      case 't': c = '\t'; break;
      case 'u': {
        int v = 0;
        for (int i = 0; i < 4; i++) {
          int h = p->pos < p->len ? hex(p->s[p->pos++]) : -1;
          if (h < 0) return fail(p, "bad \\u escape");
          v = v * 16 + h;
        }
        if (v == 0 || v >= 0x80) return fail(p, "\\u escape outside ASCII");
        c = (char)v;
        break;
      }
      default: return fail(p, "unknown escape");
      }
    }
    if (n + 1 >= cap) return fail(p, "string too long");
    out[n++] = c;
  }
  return fail(p, "unterminated string");
}

static int parse_value(struct parser *p, struct ctl_field *f) {
  if (p->pos >= p->len) return fail(p, "expected a value");
  char c = p->s[p->pos];
  if (c == '"') {
    f->kind = CTL_STRING;
    return parse_string(p, f->str, sizeof f->str);
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    bool neg = c == '-';
    if (neg) p->pos++;
    size_t start = p->pos;
    long long v = 0;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
      if (v > 100000000000000LL) return fail(p, "number too large");
      v = v * 10 + (p->s[p->pos++] - '0');
    }
    if (p->pos == start) return fail(p, "expected digits");
    if (p->pos < p->len && one_of(".eE", p->s[p->pos]))
      return fail(p, "only integers are accepted");
    f->kind = CTL_INT;
    f->num = neg ? -v : v;
    return 0;
  }
  static const struct { const char *word; enum ctl_kind kind; bool b; } words[] = {
      {"true", CTL_BOOL, true}, {"false", CTL_BOOL, false}, {"null", CTL_NULL, false}};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
    size_t n = strlen(words[i].word);
    if (p->len - p->pos >= n && memcmp(p->s + p->pos, words[i].word, n) == 0) {
      p->pos += n;
      f->kind = words[i].kind;
      f->b = words[i].b;
      return 0;
    }
  }
  return fail(p, c == '{' || c == '[' ? "nested values are not accepted" : "expected a value");
}

int ctl_parse_command(const char *line, size_t len, struct ctl_command *cmd, char *why,
                      size_t why_len) {
  struct parser p = {.s = line, .len = len, .why = why, .why_len = why_len};
  memset(cmd, 0, sizeof *cmd);
  skip_ws(&p);
  if (p.pos >= p.len || p.s[p.pos] != '{') return fail(&p, "expected a JSON object");
  p.pos++;
  skip_ws(&p);
  if (p.pos < p.len && p.s[p.pos] == '}') {
    p.pos++;
  } else {
    for (;;) {
      if (cmd->n == CTL_MAX_FIELDS) return fail(&p, "too many fields");
      struct ctl_field *f = &cmd->fields[cmd->n];
      skip_ws(&p);
      if (parse_string(&p, f->key, sizeof f->key) < 0) return -1;
      for (size_t i = 0; i < cmd->n; i++)
        if (strcmp(cmd->fields[i].key, f->key) == 0) return fail(&p, "duplicate key");
      skip_ws(&p);
      if (p.pos >= p.len || p.s[p.pos] != ':') return fail(&p, "expected ':'");
      p.pos++;
      skip_ws(&p);
      if (parse_value(&p, f) < 0) return -1;
      cmd->n++;
      skip_ws(&p);
      if (p.pos < p.len && p.s[p.pos] == ',') {
        p.pos++;
        continue;
      }
      if (p.pos < p.len && p.s[p.pos] == '}') {
        p.pos++;
        break;
      }
      return fail(&p, "expected ',' or '}'");
    }
  }
  skip_ws(&p);
  if (p.pos != p.len) return fail(&p, "trailing bytes after the object");
  const struct ctl_field *name = ctl_command_field(cmd, "cmd");
  if (name == NULL || name->kind != CTL_STRING) {
    snprintf(why, why_len, "no \"cmd\" string");
    return -1;
  }
  cmd->name = name->str;
  return 0;
}

const struct ctl_field *ctl_command_field(const struct ctl_command *cmd, const char *key) {
  for (size_t i = 0; i < cmd->n; i++)
    if (strcmp(cmd->fields[i].key, key) == 0) return &cmd->fields[i];
  return NULL;
}

bool ctl_command_uint(const struct ctl_command *cmd, const char *key, long long max,
                      unsigned *out) {
  const struct ctl_field *f = ctl_command_field(cmd, key);
  if (f == NULL || f->kind != CTL_INT || f->num < 0 || f->num > max) return false;
  *out = (unsigned)f->num;
  return true;
}
