/* A growing buffer of JSON text: just enough to write the little JSON the helpers print (the
 * monitor's sync line, exit file and control replies; an exec's captured result), without a
 * JSON library in every container's monitor. */
#ifndef CRIB_JSON_BUF_H
#define CRIB_JSON_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct json_buf {
  char *data;
  size_t len, cap;
  bool failed; /* an allocation failed: the content is incomplete */
};
int json_buf_append(struct json_buf *b, const char *s, size_t n);
int json_buf_printf(struct json_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int json_buf_string(struct json_buf *b, const char *s, size_t n); /* quoted, escaped */
int json_buf_base64(struct json_buf *b, const unsigned char *s, size_t n); /* quoted */
void json_buf_free(struct json_buf *b);

#endif
