# tests/hostile/ - included by tests/Makefile.am; paths are relative to tests/.
#
# Hostile hosts under the preload (issue 8): run.sh runs each program
# natively and under LD_PRELOAD (SMOLSCALE_PTHREAD=1, and stall reports
# every millisecond, stats, SMOLSCALE_POOLS where they matter) and
# compares stdout, exit status and stderr.  The programs are plain C:
# they must not link libsmolscale or Check (each overrides tests/
# Makefile.am's LDADD), and they export their start routines (-rdynamic).
#
#   hosts       pthreads only: exit()/quick_exit()/_exit() from threads,
#               signals at a high rate, closed descriptors, RLIMIT_NPROC,
#               setuid (hosts.c lists the cases)
#   ghosts      GLib too: fork() in a loop while threads and a
#               GThreadPool run, exit() from a pool item
#   dlhost      dlopen/run/dlclose of the plugins below, in turn; links
#               libc only
#   libhplug_thr    a plugin's own threads, joined before the dlclose
#   libhplug_thp    a plugin's work on tests/pools' libthpool.so
#   libhplug_ctor   a libthpool pool made in the constructor, destroyed in
#                   the destructor (inside dlopen and dlclose)
#   libhplug_gtp    a plugin's work on a GThreadPool (GLib comes with the
#                   plugin, not the host)
# The plugins are never installed; -rpath only makes libtool build them
# shared.
TESTS += hostile/run.sh
EXTRA_DIST += hostile/run.sh hostile/common.h hostile/plug.h

HOSTILE_LINK_FLAGS = $(AM_LDFLAGS) -rdynamic
HOSTILE_PLUG_FLAGS = -module -avoid-version -rpath $(abs_builddir)/hostile $(SS_SAN_LDFLAGS)

check_PROGRAMS += hostile/hosts hostile/dlhost
check_LTLIBRARIES += \
	hostile/libhplug_thr.la \
	hostile/libhplug_thp.la \
	hostile/libhplug_ctor.la

hostile_hosts_SOURCES = hostile/hosts.c hostile/common.h hostile/forever.h
hostile_hosts_LDFLAGS = $(HOSTILE_LINK_FLAGS)
hostile_hosts_LDADD = -lpthread

hostile_dlhost_SOURCES = hostile/dlhost.c
hostile_dlhost_LDFLAGS = $(HOSTILE_LINK_FLAGS)
hostile_dlhost_LDADD = -ldl -lpthread

hostile_libhplug_thr_la_SOURCES = hostile/plug_thr.c hostile/plug.h
hostile_libhplug_thr_la_LDFLAGS = $(HOSTILE_PLUG_FLAGS)
hostile_libhplug_thr_la_LIBADD = -lpthread

hostile_libhplug_thp_la_SOURCES = hostile/plug_thp.c hostile/plug.h
hostile_libhplug_thp_la_LDFLAGS = $(HOSTILE_PLUG_FLAGS)
hostile_libhplug_thp_la_LIBADD = pools/libthpool.la -lpthread

hostile_libhplug_ctor_la_SOURCES = hostile/plug_ctor.c hostile/plug.h
hostile_libhplug_ctor_la_LDFLAGS = $(HOSTILE_PLUG_FLAGS)
hostile_libhplug_ctor_la_LIBADD = pools/libthpool.la -lpthread

# GLib (libglib2.0-dev, found with GIO by configure): without it run.sh
# skips the cases of these two.
if HAVE_GIO
check_PROGRAMS += hostile/ghosts
check_LTLIBRARIES += hostile/libhplug_gtp.la

hostile_ghosts_SOURCES = hostile/ghosts.c hostile/common.h
hostile_ghosts_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
hostile_ghosts_LDFLAGS = $(HOSTILE_LINK_FLAGS)
hostile_ghosts_LDADD = $(GLIB_LIBS) -lpthread

hostile_libhplug_gtp_la_SOURCES = hostile/plug_gtp.c hostile/plug.h
hostile_libhplug_gtp_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
hostile_libhplug_gtp_la_LDFLAGS = $(HOSTILE_PLUG_FLAGS)
hostile_libhplug_gtp_la_LIBADD = $(GLIB_LIBS) -lpthread
endif
