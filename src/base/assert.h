/*
 * assert.h - invariants. RF_ASSERT stays on in every build: a broken
 * invariant in a money path must stop the process, not corrupt the store.
 */
#ifndef RF_ASSERT_H
#define RF_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define RF_ASSERT(cond)                                                          \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "racefree: assertion failed: %s (%s:%d)\n", #cond,  \
                    __FILE__, __LINE__);                                         \
            abort();                                                             \
        }                                                                        \
    } while (0)

#endif
