# tests/fuzz/ - included by tests/Makefile.am; paths are relative to tests/.
#
# libFuzzer targets, one per input surface:
#   fuzz_env       the SMOLSCALE_* variables: core/config.c (included
#                  whole) and shim/pthread.c's pattern lists (copied out
#                  by extract.awk into fuzz/pt_patterns.inc)
#   fuzz_poolspec  SMOLSCALE_POOLS description files: shim/poolspec.c
#   fuzz_args      the smolscale command's arguments: preload/args.c
# Each has its seeds in fuzz/corpus/NAME/ and a dictionary fuzz/NAME.dict.
#
# They are built with clang -fsanitize=fuzzer,address,undefined whatever
# CC is (a libFuzzer target must be), by the rules below rather than as
# check_PROGRAMS, only when configure found clang's fuzzer runtime
# (HAVE_FUZZER); fuzz/run.sh skips (77) without them.  make check runs
# each for SS_FUZZ_SECONDS (default 10) seconds; longer by flag:
#   make check TESTS=fuzz/run.sh SS_FUZZ_SECONDS=300
# What they find stays in fuzz/work/ (the grown corpora, logs, crashes).
TESTS += fuzz/run.sh
EXTRA_DIST += fuzz/run.sh fuzz/extract.awk \
	fuzz/fuzz_env.c fuzz/fuzz_poolspec.c fuzz/fuzz_args.c \
	fuzz/env.dict fuzz/poolspec.dict fuzz/args.dict \
	fuzz/corpus

if HAVE_FUZZER
FUZZ_CC = $(CLANG)
FUZZ_CFLAGS = -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-Wall -Wextra -Wno-unused-parameter
FUZZ_TARGETS = fuzz/fuzz_env fuzz/fuzz_poolspec fuzz/fuzz_args
check_DATA = $(FUZZ_TARGETS)

fuzz/pt_patterns.inc: $(top_srcdir)/shim/pthread.c $(srcdir)/fuzz/extract.awk
	@$(MKDIR_P) fuzz
	$(AM_V_GEN)$(AWK) -v funcs="patterns match_any" \
		-f $(srcdir)/fuzz/extract.awk $(top_srcdir)/shim/pthread.c >$@.tmp && \
	mv -f $@.tmp $@

fuzz/fuzz_env: $(srcdir)/fuzz/fuzz_env.c fuzz/pt_patterns.inc \
		$(top_srcdir)/core/config.c $(top_srcdir)/core/internal.h \
		$(top_srcdir)/core/smolscale.h
	@$(MKDIR_P) fuzz
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(top_srcdir)/core -Ifuzz \
		$(srcdir)/fuzz/fuzz_env.c -o $@ -pthread

fuzz/fuzz_poolspec: $(srcdir)/fuzz/fuzz_poolspec.c \
		$(top_srcdir)/shim/poolspec.c $(top_srcdir)/shim/poolspec.h
	@$(MKDIR_P) fuzz
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(top_srcdir)/shim \
		$(srcdir)/fuzz/fuzz_poolspec.c $(top_srcdir)/shim/poolspec.c -o $@

fuzz/fuzz_args: $(srcdir)/fuzz/fuzz_args.c $(top_srcdir)/preload/args.c \
		$(top_srcdir)/preload/args.h $(top_builddir)/config.h
	@$(MKDIR_P) fuzz
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(top_builddir) \
		-I$(top_srcdir)/preload \
		$(srcdir)/fuzz/fuzz_args.c $(top_srcdir)/preload/args.c -o $@
endif

clean-local: clean-fuzz
clean-fuzz:
	-rm -rf fuzz/work fuzz/pt_patterns.inc fuzz/pt_patterns.inc.tmp \
		fuzz/fuzz_env fuzz/fuzz_poolspec fuzz/fuzz_args
.PHONY: clean-fuzz
