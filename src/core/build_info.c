/*
 * build_info.c - what the library says about itself: its version (from
 * CMake's project(), through racefree_version.h) and the git commit it was
 * built from (rf_build_commit.h, which the build rewrites when the commit
 * changes, so a new commit recompiles this file alone).
 */
#include "racefree.h"
#include "rf_build_commit.h"

const char *rf_version(void) { return RF_VERSION; }

const char *rf_build_commit(void) { return RF_BUILD_COMMIT; }
