# tests/cli/ - included by tests/Makefile.am; paths are relative to tests/.
# run.sh tests the smolscale command (preload/smolscale.c); cli/threads is
# its helper, a plain pthreads program with a known number of threads.
TESTS += cli/run.sh
EXTRA_DIST += cli/run.sh
check_PROGRAMS += cli/threads
cli_threads_SOURCES = cli/threads.c
cli_threads_LDADD = -lpthread
