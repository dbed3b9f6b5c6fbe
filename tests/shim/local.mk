# tests/shim/ - included by tests/Makefile.am; paths are relative to tests/.
#
# Integration tests of libsmolscale-preload.so: run.sh runs each program
# natively and under LD_PRELOAD (routing off, and SMOLSCALE_PTHREAD=1) and
# compares what they print.  The programs are plain pthread programs: they
# must not link libsmolscale or Check (override tests/Makefile.am's
# LDADD), and they export their start routines (-rdynamic) so that the
# shim's SMOLSCALE_PTHREAD_ONLY / _SKIP patterns can match them by name.
TESTS += shim/run.sh
EXTRA_DIST += shim/run.sh

check_PROGRAMS += \
	shim/semantics \
	shim/cxx \
	shim/forkjoin \
	shim/waiters \
	shim/echo \
	shim/forkexec \
	shim/hostile

SHIM_LINK_FLAGS = $(AM_LDFLAGS) -rdynamic
SHIM_LINK_LIBS = -lpthread

shim_semantics_SOURCES = shim/semantics.c
shim_semantics_LDFLAGS = $(SHIM_LINK_FLAGS)
shim_semantics_LDADD = $(SHIM_LINK_LIBS)

shim_forkjoin_SOURCES = shim/forkjoin.c
shim_forkjoin_LDFLAGS = $(SHIM_LINK_FLAGS)
shim_forkjoin_LDADD = $(SHIM_LINK_LIBS)

shim_waiters_SOURCES = shim/waiters.c
shim_waiters_LDFLAGS = $(SHIM_LINK_FLAGS)
shim_waiters_LDADD = $(SHIM_LINK_LIBS)

shim_echo_SOURCES = shim/echo.c
shim_echo_LDFLAGS = $(SHIM_LINK_FLAGS)
shim_echo_LDADD = $(SHIM_LINK_LIBS)

shim_forkexec_SOURCES = shim/forkexec.c
shim_forkexec_LDFLAGS = $(SHIM_LINK_FLAGS)
shim_forkexec_LDADD = $(SHIM_LINK_LIBS)

shim_hostile_SOURCES = shim/hostile.c hostile/common.h hostile/forever.h
shim_hostile_LDFLAGS = $(SHIM_LINK_FLAGS)
shim_hostile_LDADD = $(SHIM_LINK_LIBS)

# C++: tests/Makefile.am sets no AM_CXXFLAGS; the C warning set has
# C-only options, so this one has its own.
shim_cxx_SOURCES = shim/cxx.cc
shim_cxx_CXXFLAGS = -Wall -Wextra -Wno-unused-parameter -pthread $(SS_SAN_CFLAGS)
shim_cxx_LDFLAGS = $(SHIM_LINK_FLAGS)
shim_cxx_LDADD = $(SHIM_LINK_LIBS)

# throw.sh: the preload must leave C++ exceptions alone (no DT_NEEDED
# libunwind; RESEARCH.md 4.10).
TESTS += shim/throw.sh
EXTRA_DIST += shim/throw.sh

# throw_host: plain C, links libc only (never libstdc++ or libgcc_s:
# throw.sh checks); it dlopen()s the C++ library.
check_PROGRAMS += shim/throw_host
shim_throw_host_SOURCES = shim/throw_host.c
shim_throw_host_LDFLAGS = $(SHIM_LINK_FLAGS)
shim_throw_host_LDADD = $(SHIM_LINK_LIBS)

# libssthrow.so: never installed; -rpath makes libtool build a shared
# library.  No sanitizer flags: throw.sh skips sanitizer builds.
check_LTLIBRARIES += shim/libssthrow.la
shim_libssthrow_la_SOURCES = shim/throw_lib.cc
shim_libssthrow_la_CXXFLAGS = -Wall -Wextra -Wno-unused-parameter
shim_libssthrow_la_LDFLAGS = -module -avoid-version -rpath $(abs_builddir)/shim
