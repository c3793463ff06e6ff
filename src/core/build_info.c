/*
 * build_info.c - what the library says about itself: its version (from
 * CMake's project(), through racefree_version.h) and the git commit it was
 * built from (RF_BUILD_COMMIT, given to this one file by CMakeLists.txt so
 * a new commit recompiles nothing else).
 */
#include "racefree.h"

#ifndef RF_BUILD_COMMIT
#define RF_BUILD_COMMIT ""
#endif

const char *rf_version(void) { return RF_VERSION; }

const char *rf_build_commit(void) { return RF_BUILD_COMMIT; }
