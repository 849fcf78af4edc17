/* Signal state a helper hands to what it execs: the defaults. */
#ifndef CRIB_SIGNAL_RESET_H
#define CRIB_SIGNAL_RESET_H

/* Every disposition back to SIG_DFL (glibc's internal signals included), then an empty mask.
 * 0, or -1 with errno set. */
int reset_signals_for_exec(void);

#endif
