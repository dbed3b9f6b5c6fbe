#!/usr/bin/env bash
# tests/gtp/run.sh - the GThreadPool layer (shim/gthreadpool.c) against
# GLib's contract and against real GLib/GIO programs:
#   1. gtp/contract (Check tests of GLib 2.74's GThreadPool contract):
#      natively, where real GLib must pass it (so the tests say what GLib
#      does), then under the preload, where the shim must, with
#      SS_GTP_STRICT=1 (exact-once accounting even where free(immediate)
#      races with idle threads, which GLib itself does not keep);
#   2. gtp/contract-linked: the same tests with the preload library
#      linked in, the only part that also runs in sanitizer builds;
#   3. GLib's own installed tests thread-pool and thread-pool-slow
#      (Debian package libglib2.0-tests; skipped with a note if absent)
#      under the preload;
#   4. gtp/gio_copy, a real GIO program (async enumerate and
#      g_file_copy_async through GIO's GTask pool): the same listing
#      natively and under the preload, and the preload really ran its
#      pool's items;
#   5. the bench's GThreadPool pipeline and GIO task programs
#      (bench/gthreadpool/, when built): the same stdout both ways;
#      gtp/forkfree: fork() while items free pools, pools in the children;
#   6. SMOLSCALE_GTHREADPOOL: 0 and "shared" pass pools to GLib, a bad
#      value says so in one line and the default is used.
# No timed assertions.
#
# Environment (tests/Makefile.am): SS_PRELOAD, SS_TEST_HELPER_DIR,
# SS_BENCH_DIR, SS_SANITIZER_BUILD.  SS_GTP_SLOW=0 skips thread-pool-slow
# (35 s).  Exit: 1 on any failure, else 0.
set -u
export LC_ALL=C

. "$(dirname "$0")/../lib.sh"
require_env SS_PRELOAD SS_TEST_HELPER_DIR
dir=$SS_TEST_HELPER_DIR/gtp
lib=$SS_PRELOAD
san=${SS_SANITIZER_BUILD:-}
installed=/usr/libexec/installed-tests/glib

unset LD_PRELOAD
for v in $(compgen -e | grep '^SMOLSCALE_'); do
	unset "$v"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ss-gtp.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

fails=0 passes=0
pass() { passes=$((passes + 1)); echo "ok: $*"; }
fail() { fails=$((fails + 1)); echo "FAIL: $*"; }

# run NAME CMD...: CMD's stdout in $work/NAME.out, stderr in .err.
run() {
	local name=$1
	shift
	"$@" >"$work/$name.out" 2>"$work/$name.err"
	rc=$?
}

show() {
	sed -n '1,40p' "$work/$1.err" "$work/$1.out" | sed 's/^/    /'
}

# check NAME WHAT CMD...: CMD must exit 0.
check() {
	local name=$1 what=$2
	shift 2
	run "$name" "$@"
	if [ "$rc" = 0 ]; then
		pass "$what"
	else
		fail "$what (exit $rc)"
		show "$name"
	fi
}

# ---------------------------------------------------------------- 2
# In a sanitizer build this is the only part: the linked program carries
# the sanitized layer and its runtime comes first.
check linked "contract tests with the preload library linked in" \
	env SS_GTP_EXPECT=shim SS_GTP_STRICT=1 CK_DEFAULT_TIMEOUT=60 "$dir/contract-linked"

if [ -n "$san" ]; then
	echo "note: sanitizer build (SANITIZE=$san): the preloaded runs are skipped"
	echo "$passes passed, $fails failed"
	[ "$fails" = 0 ]
	exit
fi

# ---------------------------------------------------------------- 1
# The layer finds GLib at run time: the library must not need it.
if needed=$(readelf -d "$lib" 2>/dev/null | grep NEEDED) && ! grep -Eq 'glib|gio|gobject' <<<"$needed"; then
	pass "the preload library does not link GLib"
else
	fail "the preload library links GLib, or readelf failed: $needed"
fi
check native "contract tests against real GLib (the oracle)" \
	env SS_GTP_EXPECT=glib CK_DEFAULT_TIMEOUT=60 "$dir/contract"
check preload "contract tests under the preload" \
	env SS_GTP_EXPECT=shim SS_GTP_STRICT=1 CK_DEFAULT_TIMEOUT=60 LD_PRELOAD="$lib" "$dir/contract"

# ---------------------------------------------------------------- 3
if [ -x "$installed/thread-pool" ]; then
	for i in 1 2 3; do
		check "glib-tp-$i" "GLib's installed thread-pool test under the preload ($i/3)" \
			env LD_PRELOAD="$lib" "$installed/thread-pool"
	done
	if [ "${SS_GTP_SLOW:-1}" != 0 ]; then
		check glib-slow "GLib's installed thread-pool-slow test under the preload" \
			env LD_PRELOAD="$lib" SMOLSCALE_STATS=1 "$installed/thread-pool-slow"
		if [ "$rc" = 0 ] && ! grep -q ' gpools=[1-9]' "$work/glib-slow.err"; then
			fail "thread-pool-slow ran, but not on the shim's pools"
			show glib-slow
		fi
	fi
else
	echo "note: $installed/thread-pool is missing (Debian package libglib2.0-tests): GLib's own tests skipped"
fi

# ---------------------------------------------------------------- 4
src=$work/src
mkdir -p "$src" "$work/dst-native" "$work/dst-shim"
# 300 files of 0-48 KiB, the same on every run (awk's fixed seed).
awk -v dir="$src" 'BEGIN {
	srand(7);
	for (i = 0; i < 300; i++) {
		f = sprintf("%s/f%03d.dat", dir, i);
		n = int(rand() * 48 * 1024 / 64);
		for (j = 0; j < n; j++)
			printf "%08d %04d %049d\n", i, j, int(rand() * 1e9) >f;
		if (n == 0)
			printf "" >f;
		close(f);
	}
}'
run gio-native "$dir/gio_copy" "$src" "$work/dst-native"
if [ "$rc" != 0 ]; then
	fail "gio_copy natively (exit $rc)"
	show gio-native
else
	run gio-shim env LD_PRELOAD="$lib" SMOLSCALE_STATS=1 "$dir/gio_copy" "$src" "$work/dst-shim"
	if [ "$rc" != 0 ]; then
		fail "gio_copy under the preload (exit $rc)"
		show gio-shim
	elif ! cmp -s "$work/gio-native.out" "$work/gio-shim.out"; then
		fail "gio_copy lists other files under the preload"
		diff "$work/gio-native.out" "$work/gio-shim.out" | head -20 | sed 's/^/    /'
	elif ! diff -r "$src" "$work/dst-shim" >/dev/null; then
		fail "gio_copy's copies under the preload differ from the sources"
	elif ! grep -Eq ' gpool_items=[1-9]' "$work/gio-shim.err"; then
		fail "gio_copy under the preload did not run GIO's jobs on the shim's pool"
		show gio-shim
	else
		pass "gio_copy: the same $(tail -1 "$work/gio-shim.out") natively and under the preload, GIO's jobs on the shim ($(grep -Eo 'gpool_items=[0-9]+' "$work/gio-shim.err"))"
	fi
fi

# ---------------------------------------------------------------- 5
# same NAME CMD...: the same stdout and exit natively and under the preload.
same() {
	local name=$1
	shift
	run "$name-native" "$@"
	local rc0=$rc
	run "$name-shim" env LD_PRELOAD="$lib" SMOLSCALE_STATS=1 "$@"
	if [ "$rc0" != 0 ] || [ "$rc" != 0 ]; then
		fail "$name: exit $rc0 natively, $rc under the preload"
		show "$name-native"
		show "$name-shim"
	elif ! cmp -s "$work/$name-native.out" "$work/$name-shim.out"; then
		fail "$name: other output under the preload"
		diff "$work/$name-native.out" "$work/$name-shim.out" | head | sed 's/^/    /'
	elif ! grep -Eq ' gpool_items=[1-9]' "$work/$name-shim.err"; then
		fail "$name: the preload did not run its items"
	else
		pass "$name: the same output both ways ($(head -1 "$work/$name-shim.out"))"
	fi
}
bd=${SS_BENCH_DIR:-}/gthreadpool
if [ -x "$bd/pipeline" ] && [ -x "$bd/gio_tasks" ]; then
	same pipeline-paced "$bd/pipeline" --rate 20000 --messages 10000
	same pipeline-full "$bd/pipeline" --rate 0 --messages 50000 --max-threads 4
	# Unlimited pools, paced: natively GLib starts a thread per waiting
	# item, so a flood would only test the machine's thread limit.
	same pipeline-unlimited "$bd/pipeline" --rate 10000 --messages 5000 --max-threads -1
	same pipeline-serial "$bd/pipeline" --rate 0 --messages 20000 --max-threads 1 --stages 8
	same gio-tasks "$bd/gio_tasks" --jobs 5000
	same gio-tasks-io "$bd/gio_tasks" --jobs 2000 --io
else
	echo "note: $bd/pipeline or gio_tasks not built (make all first): their checks skipped"
fi

# fork while items free pools with wait_=TRUE; pools in the children.
# A hang here is a lock-order bug at fork: timeout(1) turns it into a
# failure.
run forkfree timeout 120 env LD_PRELOAD="$lib" SMOLSCALE_STATS=1 "$dir/forkfree" 3
if [ "$rc" = 0 ] && grep -qx 'forkfree ok' "$work/forkfree.out"; then
	pass "fork while items free pools, and pools in the children ($(grep -o '[0-9]* forks' "$work/forkfree.err"))"
else
	fail "forkfree under the preload (exit $rc; 124: it hung)"
	show forkfree
fi

# ---------------------------------------------------------------- 6
run off env LD_PRELOAD="$lib" SMOLSCALE_GTHREADPOOL=0 SMOLSCALE_STATS=1 \
	"$dir/gio_copy" "$src" "$work/dst-off"
if [ "$rc" = 0 ] && cmp -s "$work/gio-native.out" "$work/off.out" &&
	grep -q ' gpools=0 gpools_foreign=[1-9]' "$work/off.err"; then
	pass "SMOLSCALE_GTHREADPOOL=0 gives every pool to GLib"
else
	fail "SMOLSCALE_GTHREADPOOL=0 (exit $rc)"
	show off
fi
run shared env LD_PRELOAD="$lib" SMOLSCALE_GTHREADPOOL=shared SMOLSCALE_STATS=1 \
	CK_DEFAULT_TIMEOUT=60 "$dir/contract"
# Each Check test is a process of its own with its own stats line.
if [ "$rc" = 0 ] && grep -q ' gpools=[1-9]' "$work/shared.err" &&
	grep -q ' gpools_foreign=[1-9]' "$work/shared.err"; then
	pass "SMOLSCALE_GTHREADPOOL=shared: exclusive pools to GLib, shared ones here, contract holds"
else
	fail "SMOLSCALE_GTHREADPOOL=shared (exit $rc)"
	show shared
fi
run bad env LD_PRELOAD="$lib" SMOLSCALE_GTHREADPOOL=maybe SMOLSCALE_STATS=1 \
	"$dir/gio_copy" "$src" "$work/dst-bad"
if [ "$rc" = 0 ] &&
	[ "$(grep -c 'SMOLSCALE_GTHREADPOOL="maybe" is not 0, 1 or shared; using the default 1' "$work/bad.err")" = 1 ] &&
	grep -Eq ' gpool_items=[1-9]' "$work/bad.err"; then
	pass "a bad SMOLSCALE_GTHREADPOOL gets one line and the default"
else
	fail "a bad SMOLSCALE_GTHREADPOOL (exit $rc)"
	show bad
fi

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
