/* Signal names as runc accepts them: "KILL", "SIGKILL", "kill" or a number. */
#ifndef CRIB_SIGNALS_H
#define CRIB_SIGNALS_H

#include "crib-error.h"

int crib_signal_parse(const char *s, int *sig, crib_err *err);

#endif
