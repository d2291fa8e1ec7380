/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* flood: a synthetic record source for ingest benchmarks and loss tests. */
#ifndef PM_FLOOD_H
#define PM_FLOOD_H

#include "pm_common.h"

#define PM_FLOOD_MAX_BATCH 4096

struct pm_flood_cfg {
	__u32 tgid; /* only this process's getppid() calls produce records */
	__u32 batch; /* records per call, at most PM_FLOOD_MAX_BATCH */
};

struct pm_flood {
	struct pm_hdr hdr;
	__u64 seq;
};

#endif
