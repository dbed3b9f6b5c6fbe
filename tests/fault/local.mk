# tests/fault/ - included by tests/Makefile.am; paths are relative to tests/.
#
# Fault injection (issue 8).  fault/fault is a workload linked against the
# core convenience library with the core's allocation and thread-creation
# calls wrapped (-Wl,--wrap: only the calls from the objects linked here,
# the core's and the workload's, not libc's own); fault.c's wrappers count
# the calls and fail a chosen one, or every one for a while.  run.sh learns
# the number of calls of each function and each call site, then runs the
# workload once per injected failure and checks that every API call kept
# its contract and that no task was lost or run twice, with no crash and
# no hang; within a time budget, fewer runs under a sanitizer.
TESTS += fault/run.sh
EXTRA_DIST += fault/run.sh
check_PROGRAMS += fault/fault
fault_fault_SOURCES = fault/fault.c tsan.c
fault_fault_LDADD = $(top_builddir)/core/libsmolscale_core.la -lpthread -ldl
fault_fault_LDFLAGS = $(AM_LDFLAGS) \
	-Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc \
	-Wl,--wrap=posix_memalign -Wl,--wrap=aligned_alloc \
	-Wl,--wrap=mmap -Wl,--wrap=mprotect -Wl,--wrap=memfd_create \
	-Wl,--wrap=open_memstream -Wl,--wrap=dlopen \
	-Wl,--wrap=pthread_create
