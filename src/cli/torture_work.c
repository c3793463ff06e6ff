/*
 * torture_work.c - the scenarios of work done once: jobs claimed once,
 * notifications read once, rate limits held.
 */
#include "cli/torture.h"

const struct tt_scenario tt_work_scenarios[] = {{0}};
const int tt_work_count = 0;
