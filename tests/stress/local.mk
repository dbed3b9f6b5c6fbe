# tests/stress/ - included by tests/Makefile.am; paths are relative to tests/.
#
# The stress and soak driver (issue 8, "Hardening"): stress/stress is a
# plain program (no Check) linked with the library; several driver threads
# issue seeded random mixes of every native API (tasks, cancel, fibers,
# channels, one-shots, groups, blocking) and account for every task and
# message exactly.  run.sh is its `make check` short mode, in every build:
# a fixed seed and a random one, failing on a nonzero exit or any
# sanitizer report.  The long soak is run by hand, in a build tree (the
# issue's bar: 10 minutes in the ASan+UBSan and in the TSan build):
#   tests/stress/stress --minutes 10 [--seed S] [--threads N] [--verbose]
# stress.c links tsan.c for the TSan defaults of the other test programs.
TESTS += stress/run.sh
EXTRA_DIST += stress/run.sh
check_PROGRAMS += stress/stress

stress_stress_SOURCES = stress/stress.c tsan.c
stress_stress_LDADD = $(top_builddir)/core/libsmolscale.la -lpthread
