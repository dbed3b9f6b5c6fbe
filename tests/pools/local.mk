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
TESTS += pools/run.sh
EXTRA_DIST += pools/run.sh

check_LTLIBRARIES += \
	pools/libthpool.la \
	pools/libtpool.la \
	pools/libplugin.la \
	pools/libplugin_now.la \
	pools/libplugin_noplt.la

check_PROGRAMS += \
	pools/user \
	pools/user_now \
	pools/user_noplt \
	pools/static_user \
	pools/user_dl

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
