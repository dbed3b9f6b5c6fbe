# tests/pools/ - included by tests/Makefile.am; paths are relative to tests/.
#
# The pool interposer (shim/pools.c, SMOLSCALE_POOLS=FILE): run.sh runs
# programs that use two small pthread pools with the APIs of real C pool
# libraries natively and under the preload with the descriptions in
# shim/pools/, and compares what they print.  The programs are plain
# pthread programs: they must not link libsmolscale or Check (override
# tests/Makefile.am's LDADD).
#
#   libthpool, libtpool   the pools, shared libraries (the interposer
#                         rewrites the GOT/PLT entries that call them);
#                         never installed, so -rpath only makes them shared
#   user                  uses libthpool (DT_NEEDED); _now is linked with
#                         -z now (full RELRO, BIND_NOW), _noplt compiled
#                         with -fno-plt (GLOB_DAT calls through the GOT)
#   static_user           user with thpool.c linked in and exported
#                         (-rdynamic): direct calls, left alone
#   libplugin             uses libtpool (DT_NEEDED); user_dl dlopens it
#                         after starting; _now and _noplt as for user
#
# linked.sh runs user-linked and user_dl-linked: user and user_dl linked
# with pools/libsspools (lib.c: the preload's dlopen and the interposer's
# start-up over the same shim and core) instead of preloading, so that the
# sanitizer builds test the interposer too (a sanitizer runtime must come
# first, which LD_PRELOAD breaks).
TESTS += pools/run.sh pools/linked.sh
EXTRA_DIST += pools/run.sh pools/linked.sh

check_LTLIBRARIES += \
	pools/libthpool.la \
	pools/libtpool.la \
	pools/libplugin.la \
	pools/libplugin_now.la \
	pools/libplugin_noplt.la \
	pools/libsspools.la

check_PROGRAMS += \
	pools/user \
	pools/user_now \
	pools/user_noplt \
	pools/static_user \
	pools/user_dl \
	pools/user-linked \
	pools/user_dl-linked

POOLS_LIB_LDFLAGS = -avoid-version -rpath $(abs_builddir)/pools $(SS_SAN_LDFLAGS)
POOLS_NOW = -Wl,-z,relro -Wl,-z,now

pools_libthpool_la_SOURCES = pools/thpool.c pools/thpool.h
pools_libthpool_la_LDFLAGS = $(POOLS_LIB_LDFLAGS)
pools_libthpool_la_LIBADD = -lpthread

pools_libtpool_la_SOURCES = pools/tpool.c pools/tpool.h
pools_libtpool_la_LDFLAGS = $(POOLS_LIB_LDFLAGS)
pools_libtpool_la_LIBADD = -lpthread

# -module: loaded with dlopen, linked against by nothing.
pools_libplugin_la_SOURCES = pools/plugin.c pools/work.h
pools_libplugin_la_LDFLAGS = -module $(POOLS_LIB_LDFLAGS)
pools_libplugin_la_LIBADD = pools/libtpool.la -lpthread

pools_libplugin_now_la_SOURCES = pools/plugin.c
pools_libplugin_now_la_LDFLAGS = -module $(POOLS_LIB_LDFLAGS) $(POOLS_NOW)
pools_libplugin_now_la_LIBADD = pools/libtpool.la -lpthread

pools_libplugin_noplt_la_SOURCES = pools/plugin.c
pools_libplugin_noplt_la_CFLAGS = $(AM_CFLAGS) -fno-plt
pools_libplugin_noplt_la_LDFLAGS = -module $(POOLS_LIB_LDFLAGS)
pools_libplugin_noplt_la_LIBADD = pools/libtpool.la -lpthread

pools_user_SOURCES = pools/user.c pools/work.h
pools_user_LDADD = pools/libthpool.la -lpthread

pools_user_now_SOURCES = pools/user.c
pools_user_now_LDFLAGS = $(AM_LDFLAGS) $(POOLS_NOW)
pools_user_now_LDADD = pools/libthpool.la -lpthread

pools_user_noplt_SOURCES = pools/user.c
pools_user_noplt_CFLAGS = $(AM_CFLAGS) -fno-plt
pools_user_noplt_LDADD = pools/libthpool.la -lpthread

# Its own CFLAGS give its objects their own names: thpool.c is also an
# object of libthpool.la, built with libtool.
pools_static_user_SOURCES = pools/static_user.c pools/thpool.c
pools_static_user_CFLAGS = $(AM_CFLAGS)
pools_static_user_LDFLAGS = $(AM_LDFLAGS) -rdynamic
pools_static_user_LDADD = -lpthread

pools_user_dl_SOURCES = pools/user_dl.c
pools_user_dl_LDADD = -ldl -lpthread

# The preload's dlopen and nothing else exported (no pthread names: a
# sanitizer runtime, TSan's above all, must own those); its constructor
# starts the interposer as the preload's does.
pools_libsspools_la_SOURCES = pools/lib.c
pools_libsspools_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/shim
pools_libsspools_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
pools_libsspools_la_LDFLAGS = $(POOLS_LIB_LDFLAGS) \
	-export-symbols-regex '^dlopen$$'
pools_libsspools_la_LIBADD = \
	$(top_builddir)/shim/libsmolscale_shim.la \
	$(top_builddir)/core/libsmolscale_core.la \
	-lpthread -ldl

# libsspools ahead of libthpool (and of libc): its dlopen is the first
# definition after the sanitizer runtime's (which the linker puts first).
# --no-as-needed: user.c calls nothing of libsspools, which must stay a
# DT_NEEDED all the same.
POOLS_LINKED_FLAGS = $(AM_LDFLAGS) -Wl,--no-as-needed

pools_user_linked_SOURCES = pools/user.c tsan.c
pools_user_linked_LDFLAGS = $(POOLS_LINKED_FLAGS)
pools_user_linked_LDADD = pools/libsspools.la pools/libthpool.la -lpthread

pools_user_dl_linked_SOURCES = pools/user_dl.c tsan.c
pools_user_dl_linked_LDFLAGS = $(POOLS_LINKED_FLAGS)
pools_user_dl_linked_LDADD = pools/libsspools.la -ldl -lpthread
