/* Capability names by number. The daemon has the same table (src/container/oci-spec/
 * capabilities.ts): native/test/capabilities.test.ts checks, through `crib-runtime features`,
 * that the two agree name for name and number for number and cover the running kernel. */
#ifndef CRIB_CAPABILITIES_H
#define CRIB_CAPABILITIES_H

#include <linux/capability.h>

#define CRIB_CAP_COUNT (CAP_LAST_CAP + 1)

/* "CAP_CHOWN" for 0 etc.; NULL outside 0..CAP_LAST_CAP. */
const char *crib_cap_name(int cap);

/* Capability number of "CAP_SYS_ADMIN" etc. (any case), -1 when unknown. */
int crib_cap_from_name(const char *name);

#endif
