/* JSON text for the helpers' output (crib-json-buf.h); what the monitor reads is parsed by its
 * ctl-command.c. */
#include "crib-json-buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A failed allocation marks the buffer failed: later appends do nothing, and the caller checks
 * `failed` once at the end instead of after every piece. */
static int reserve(struct json_buf *b, size_t extra) {
  if (b->failed) return -1;
  if (b->len + extra + 1 <= b->cap) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1) cap *= 2;
  char *d = realloc(b->data, cap);
  if (d == NULL) {
    b->failed = true;
    return -1;
  }
  b->data = d;
  b->cap = cap;
  return 0;
}

int json_buf_append(struct json_buf *b, const char *s, size_t n) {
  if (reserve(b, n) < 0) return -1;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int json_buf_printf(struct json_buf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = true;
    return -1;
  }
  if ((size_t)n >= sizeof tmp) n = sizeof tmp - 1;
  return json_buf_append(b, tmp, (size_t)n);
}

int json_buf_string(struct json_buf *b, const char *s, size_t n) {
  if (json_buf_append(b, "\"", 1) < 0) return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[8];
    const char *out = esc;
    size_t len = 2;
    switch (c) {
    case '"': out = "\\\""; break;
    case '\\': out = "\\\\"; break;
    case '\n': out = "\\n"; break;
    case '\r': out = "\\r"; break;
    case '\t': out = "\\t"; break;
    default:
      if (c < 0x20 || c == 0x7f) {
        snprintf(esc, sizeof esc, "\\u%04x", c);
        len = 6;
      } else {
        /* Bytes >= 0x80 pass through: runtime messages are UTF-8 or close to it, and a reader
         * that decodes leniently still shows the text. */
        esc[0] = (char)c;
        len = 1;
      }
    }
    if (json_buf_append(b, out, len) < 0) return -1;
  }
  return json_buf_append(b, "\"", 1);
}

int json_buf_base64(struct json_buf *b, const unsigned char *s, size_t n) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (reserve(b, (n + 2) / 3 * 4 + 2) < 0) return -1;
  char *o = b->data + b->len;
  *o++ = '"';
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
    *o++ = tbl[v >> 18];
    *o++ = tbl[(v >> 12) & 63];
    *o++ = tbl[(v >> 6) & 63];
    *o++ = tbl[v & 63];
  }
  if (n - i == 1) {
    unsigned v = (unsigned)s[i] << 16;
    *o++ = tbl[v >> 18];
    *o++ = tbl[(v >> 12) & 63];
    *o++ = '=';
    *o++ = '=';
  } else if (n - i == 2) {
    unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8;
    *o++ = tbl[v >> 18];
    *o++ = tbl[(v >> 12) & 63];
    *o++ = tbl[(v >> 6) & 63];
    *o++ = '=';
  }
  *o++ = '"';
  b->len = (size_t)(o - b->data);
  b->data[b->len] = '\0';
  return 0;
}

void json_buf_free(struct json_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
  b->failed = false;
}
