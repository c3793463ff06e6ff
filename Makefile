# The short commands. `make run` and `make test` are the README quick start:
# each installs what is missing (scripts/deps.sh), builds, and runs.
BUILD      ?= build
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
# `make install`: where (PREFIX) and under which staging root (DESTDIR).
PREFIX     ?= /usr/local
DESTDIR    ?=

.PHONY: all build deps run test test-fast asan tsan clean bench mutants install fuzz

all: build

deps:
	@scripts/deps.sh

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) $(CMAKE_ARGS)

build: $(BUILD)/Makefile
	cmake -S . -B $(BUILD) $(CMAKE_ARGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# Quiet: only the server's binary is built, and the build's output is shown
# only when it fails (also kept in $(BUILD)/make-run.log), so the first lines
# a newcomer sees are the server's: the admin key and a curl line to try it.
# RUN_ARGS go to `racefree serve` (e.g. RUN_ARGS='--listen 127.0.0.1:9090').
RUN_ARGS ?=
run: deps
	@mkdir -p $(BUILD); log=$(BUILD)/make-run.log; \
	echo "racefree: building $(BUILD)/racefree (output in $$log)..."; \
	if ! { cmake -S . -B $(BUILD) $(CMAKE_ARGS) && \
	       cmake --build $(BUILD) -j $(JOBS) --target racefree_bin; } >$$log 2>&1; then \
	  cat $$log; echo "racefree: the build failed (output above)" >&2; exit 1; \
	fi
	@exec $(BUILD)/racefree serve $(RUN_ARGS)

# Installs the binary, the headers, both libraries, racefree.pc, the man
# pages and the docs under $(DESTDIR)$(PREFIX) (README "Install"). The
# prefix is configured too, so the library directory suits it (lib/<arch>
# under /usr on Debian).
install: build
	cmake -S . -B $(BUILD) $(CMAKE_ARGS) -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

# Every test, on SQLite and on a throwaway PostgreSQL, in a normal build, an
# ASan+UBSan build, and the threaded executor/core tests under TSan.
test: deps
	@scripts/test.sh

# One build, one pass (no sanitizers): for the edit-test loop.
test-fast: deps
	@RF_TEST_VARIANTS=plain scripts/test.sh

# The libFuzzer targets of tests/fuzz, built with clang in build-fuzz/, each
# run for FUZZ_SECONDS from its seed corpus after replaying its kept
# regression inputs (scripts/fuzz.sh; FUZZ_TARGETS picks some). `make test`
# runs the same for 10 s per target.
FUZZ_SECONDS ?= 60
fuzz: deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh

# Re-introduces each bug class in tests/mutants/ one at a time and runs the
# tests that must catch it, on SQLite and PostgreSQL (docs/TESTING.md).
# Not part of `make test`: it rebuilds once per mutant.
mutants: deps
	@scripts/mutants.sh

# racefree side by side with the seeds' hand-written fixes (bench/baselines/,
# Node; installed on first use), plus the library (rf-bench-embedded); rewrites
# the top of docs/PERFORMANCE.md and docs/perf/. Filters: BENCH_SECONDS,
# BENCH_SUITES, BENCH_BACKENDS, BENCH_CONNS, BENCH_ROUNDS (bench/run.sh).
bench: deps build
	@bench/run.sh

clean:
	rm -rf $(BUILD) build-asan build-tsan build-mutants build-fuzz
