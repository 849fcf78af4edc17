/* Numbers from command-line text, as the native binaries take them. */
#ifndef CRIB_PARSE_UINT_H
#define CRIB_PARSE_UINT_H

/* A decimal number min..max, digits only (no sign, no space): 0, or -1 if it is not one. */
int crib_parse_uint(const char *text, unsigned long min, unsigned long max, unsigned long *out);

#endif
