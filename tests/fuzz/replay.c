/*
 * replay.c - the main of a fuzz target in the normal (gcc) build: runs the
 * target's LLVMFuzzerTestOneInput once over every file of the directories
 * (or files) named on the command line, so the seed corpus and every kept
 * regression input run in each `make test` variant, also where clang is
 * missing. Exits 1 when no input was found (a replay of nothing proves
 * nothing); a crash or a broken invariant aborts, as under libFuzzer.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz/fuzz.h"

/* Runs the target over one file; false when it cannot be read. */
static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) abort();
    /* an exact-size copy, as libFuzzer passes it */
    unsigned char *data = malloc(n ? n : 1);
    if (!data) abort();
    memcpy(data, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(data, n);
    free(data);
    return 1;
}

static int replay_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode)) return replay_file(path);
    DIR *d = opendir(path);
    if (!d) return 0;
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue; /* ., .. and hidden files */
        char file[4096];
        snprintf(file, sizeof file, "%s/%s", path, e->d_name);
        count += replay_file(file);
    }
    closedir(d);
    return count;
}

int main(int argc, char **argv) {
    int count = 0;
    for (int i = 1; i < argc; i++) count += replay_path(argv[i]);
    printf("%s: replayed %d inputs\n", argv[0], count);
    return count > 0 ? 0 : 1;
}
