# tests/gtp/ - included by tests/Makefile.am; paths are relative to tests/.
#
# The GThreadPool layer (shim/gthreadpool.c).  contract.c encodes GLib
# 2.74's GThreadPool contract as Check tests; run.sh runs it against real
# GLib (the oracle) and under the preload, runs GLib's own installed tests
# (libglib2.0-tests) and a real GIO program (gio_copy.c) both ways.
# contract-linked is the same program linked with gtp/libssgtp (the
# preload's GThreadPool names over the same shim and core, lib.c) instead
# of preloading, so that the sanitizer builds test the layer too (a
# sanitizer runtime must come first, which LD_PRELOAD breaks).
if HAVE_GIO
TESTS += gtp/run.sh
check_PROGRAMS += gtp/contract gtp/contract-linked gtp/gio_copy gtp/forkfree
check_LTLIBRARIES += gtp/libssgtp.la

gtp_libssgtp_la_SOURCES = gtp/lib.c
gtp_libssgtp_la_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/shim
gtp_libssgtp_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden
# -rpath: a shared library although it is never installed.
gtp_libssgtp_la_LDFLAGS = -module -avoid-version -rpath $(abs_builddir)/gtp \
	-export-symbols-regex '^g_thread_pool_[a-z_]+$$' $(SS_SAN_LDFLAGS)
gtp_libssgtp_la_LIBADD = \
	$(top_builddir)/shim/libsmolscale_shim.la \
	$(top_builddir)/core/libsmolscale_core.la \
	-lpthread -ldl

gtp_contract_SOURCES = gtp/contract.c
gtp_contract_CFLAGS = $(AM_CFLAGS) $(GIO_CFLAGS)
gtp_contract_LDADD = $(GIO_LIBS) $(CHECK_LIBS) -lpthread

gtp_contract_linked_SOURCES = gtp/contract.c tsan.c
gtp_contract_linked_CFLAGS = $(AM_CFLAGS) $(GIO_CFLAGS)
gtp_contract_linked_LDADD = gtp/libssgtp.la $(GIO_LIBS) $(CHECK_LIBS) -lpthread

gtp_gio_copy_SOURCES = gtp/gio_copy.c
gtp_gio_copy_CFLAGS = $(AM_CFLAGS) $(GIO_CFLAGS)
gtp_gio_copy_LDADD = $(GIO_LIBS)

gtp_forkfree_SOURCES = gtp/forkfree.c
gtp_forkfree_CFLAGS = $(AM_CFLAGS) $(GIO_CFLAGS)
gtp_forkfree_LDADD = $(GIO_LIBS)
endif
EXTRA_DIST += gtp/run.sh
