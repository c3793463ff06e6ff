/*
 * fuzz.h - what the libFuzzer targets of tests/fuzz share: the entry point
 * each defines, a NUL-terminated copy of an input (the parsers read C
 * strings, as the server hands them over), and FUZZ_CHECK, which turns a
 * broken invariant into a crash libFuzzer reports and keeps the input of.
 *
 * A target calls the parsing layer directly: no server, no socket, no
 * store. Built with clang and -fsanitize=fuzzer (RF_FUZZ=ON), or with
 * replay.c's main in the normal build, where it replays the seed corpus
 * and the regression inputs as a unit test.
 */
#ifndef RF_FUZZ_H
#define RF_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A malloc'd copy of data[0..n) with a NUL after it (exactly n + 1 bytes, so
 * ASan sees any read past the end). A NUL inside ends the string there, as
 * it would for the parser in the server. */
static inline char *fuzz_cstr(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    if (n) memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

#define FUZZ_CHECK(cond)                                                               \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                   \
        }                                                                              \
    } while (0)

#endif
