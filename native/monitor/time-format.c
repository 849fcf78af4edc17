/* Timestamps for log records and the exit file. kubelet parses them with Go's RFC3339Nano, which
 * accepts any number of fraction digits; a fixed 9 keeps records sortable as plain text. */
#include "monitor.h"

#include <stdio.h>
#include <stdlib.h>

void format_timestamp(char out[TIMESTAMP_MAX], const struct timespec *ts) {
  struct tm tm;
  time_t secs = ts->tv_sec;
  if (localtime_r(&secs, &tm) == NULL) gmtime_r(&secs, &tm);
  char date[32];
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  long off = tm.tm_gmtoff;
  if (off == 0) {
    snprintf(out, TIMESTAMP_MAX, "%s.%09ldZ", date, ts->tv_nsec);
    return;
  }
  char sign = off < 0 ? '-' : '+';
  /* Real offsets are within +-26 h; the clamp only tells the compiler the width is bounded. */
  int hours = (int)(labs(off) / 3600 % 100), mins = (int)(labs(off) % 3600 / 60);
  snprintf(out, TIMESTAMP_MAX, "%s.%09ld%c%02d:%02d", date, ts->tv_nsec % 1000000000L, sign, hours,
           mins);
}

void format_now(char out[TIMESTAMP_MAX]) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  format_timestamp(out, &ts);
}
