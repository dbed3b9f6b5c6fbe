#!/usr/bin/env bash
# tests/pools/linked.sh - the pool interposer (shim/pools.c) linked in
# rather than preloaded, so that it is also tested in the sanitizer builds
# (a sanitizer runtime must come first, which LD_PRELOAD breaks; run.sh
# skips its preloaded parts there).  pools/user-linked and
# pools/user_dl-linked are user.c and user_dl.c linked with
# pools/libsspools (lib.c: the preload's dlopen and the interposer's
# start-up, over the same shim and core), ahead of libthpool.  Runs in
# every build:
#   1. the shape: libsspools exports dlopen and nothing else (no pthread
#      name: a sanitizer runtime must own those); the programs need it
#      ahead of libthpool, and in a sanitizer build after the runtime,
#      which comes first;
#   2. user and user_dl (with each libplugin variant) natively: the
#      reference checksums, every item on the pool;
#   3. user-linked without SMOLSCALE_POOLS: nothing rerouted, the same
#      output as natively;
#   4. SMOLSCALE_POOLS=shim/pools/thpool.conf: user-linked prints the
#      same checksum, every item ran on a smolscale worker and none on the
#      pool, and SMOLSCALE_STATS=1's line has pool_items >= items;
#   5. SMOLSCALE_POOLS=shim/pools/tpool.conf: user_dl-linked, which
#      dlopens libplugin (through the sanitizer runtime's dlopen, then
#      libsspools's) after starting threads: the same, for each variant.
# Every run must exit 0 and leave no sanitizer report on stderr
# (AddressSanitizer, LeakSanitizer, ThreadSanitizer, UBSan's "runtime
# error:").  No timed assertions; every run has a 120 s timeout (124: it
# hung).  The sanitizers' options come from the environment
# (scripts/check), TSan's defaults from tests/tsan.c.
#
# Environment (tests/Makefile.am): SS_TEST_HELPER_DIR, SS_SRCDIR,
# SS_SANITIZER_BUILD.  SS_POOLS_KEEP=1 keeps the work directory.  Exit: 1
# on any failure, else 0.
set -u
export LC_ALL=C

. "$(dirname "$0")/../lib.sh"
require_env SS_TEST_HELPER_DIR SS_SRCDIR
bin=$SS_TEST_HELPER_DIR/pools
libs=$bin/.libs
confs=$SS_SRCDIR/../shim/pools
san=${SS_SANITIZER_BUILD:-}

for p in user user_dl user-linked user_dl-linked; do
	if [ ! -x "$bin/$p" ]; then
		echo "FAIL: test program $bin/$p was not built"
		exit 1
	fi
done
for l in libsspools libplugin libplugin_now libplugin_noplt; do
	if [ ! -f "$libs/$l.so" ]; then
		echo "FAIL: test library $libs/$l.so was not built"
		exit 1
	fi
done
for c in thpool tpool; do
	if [ ! -f "$confs/$c.conf" ]; then
		echo "FAIL: description $confs/$c.conf is missing"
		exit 1
	fi
done

unset LD_PRELOAD
for v in $(compgen -e | grep '^SMOLSCALE_'); do
	unset "$v"
done
# The programs find libsspools.so and libthpool.so by their RUNPATH;
# libplugin.so finds libtpool.so next to it in the build tree.
export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

work=$(mktemp -d "${TMPDIR:-/tmp}/ss-pools-linked.XXXXXX") || exit 1
if [ "${SS_POOLS_KEEP:-0}" = 1 ]; then
	echo "note: work directory $work kept"
else
	trap 'rm -rf "$work"' EXIT
fi

fails=0 passes=0
pass() { passes=$((passes + 1)); echo "ok: $*"; }
fail() { fails=$((fails + 1)); echo "FAIL: $*"; }

# run NAME CMD...: CMD's stdout in $work/NAME.out, stderr in .err, exit
# status in $rc.
run() {
	local name=$1
	shift
	timeout 120 "$@" >"$work/$name.out" 2>"$work/$name.err"
	rc=$?
}

show() {
	sed -n '1,60p' "$work/$1.err" | sed 's/^/    err: /'
	sed -n '1,10p' "$work/$1.out" | sed 's/^/    out: /'
}

sums() { grep '^checksum=' "$work/$1.out"; }
items() { sums "$1" | sed -n 's/.* items=\([0-9]*\).*/\1/p' | awk '{ n += $1 } END { print n + 0 }'; }
ran() { sed -n "s/.*\<$2=\([0-9]*\).*/\1/p" "$work/$1.out" | tail -1; }
stat_items() { grep -Eo ' pool_items=[0-9]+' "$work/$1.err" | tail -1 | cut -d= -f2; }

# A sanitizer's report in NAME's stderr: its first line.
report() {
	grep -Em1 'ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer|ThreadSanitizer:|runtime error:' \
		"$work/$1.err"
}

# expect NAME WHAT REF MODE: NAME's run exited 0 with no sanitizer report,
# printed REF's checksum lines, and its items ran
#   pool      all on the pool's threads (natively, or nothing rerouted)
#   stats     all on smolscale's workers, none on the pool, and the
#             stats line says pool_items >= items
expect() {
	local name=$1 what=$2 ref=$3 mode=$4
	local why="" n w p e k="" r
	n=$(items "$name")
	w=$(ran "$name" ran_on_workers)
	p=$(ran "$name" ran_on_pool)
	e=$(ran "$name" ran_elsewhere)
	if r=$(report "$name"); then
		why="sanitizer report (exit $rc): $r"
	elif [ "$rc" != 0 ]; then
		why="exit $rc"
	elif [ -z "$(sums "$name")" ] || [ -z "$w" ] || [ -z "$p" ]; then
		why="no checksum or ran_on_* line"
	elif [ "$(sums "$name")" != "$(sums "$ref")" ]; then
		why="checksum $(sums "$name" | head -1), natively $(sums "$ref" | head -1)"
	elif [ "$mode" = pool ]; then
		[ "$w" = 0 ] && [ "$p" = "$n" ] ||
			why="ran_on_workers=$w ran_on_pool=$p ran_elsewhere=${e:-?}, expected 0 and $n"
	else
		[ "$w" = "$n" ] && [ "$p" = 0 ] ||
			why="ran_on_workers=$w ran_on_pool=$p ran_elsewhere=${e:-?}, expected $n and 0"
		if [ -z "$why" ]; then
			k=$(stat_items "$name")
			if [ -z "$k" ]; then
				why="no pool_items= in the SMOLSCALE_STATS line"
			elif [ "$k" -lt "$n" ]; then
				why="pool_items=$k < $n items"
			fi
		fi
	fi
	if [ -z "$why" ]; then
		pass "$what ($(sums "$name" | head -1); ran_on_workers=$w ran_on_pool=$p${k:+ pool_items=$k})"
		return 0
	fi
	fail "$what: $why"
	show "$name"
	return 1
}

# -------------------------------------------------------------------- 1
if command -v readelf >/dev/null; then
	# Defined dynamic symbols of libsspools.so, other than the version
	# script's own.
	exports=$(readelf --dyn-syms -W "$libs/libsspools.so" |
		awk '$1 ~ /^[0-9]+:$/ && $7 != "UND" && $5 != "LOCAL" && $8 != "" && $4 != "SECTION" && $4 != "FILE" { sub(/@.*/, "", $8); print $8 }' |
		sort -u | tr '\n' ' ')
	if [ "$exports" = "dlopen " ]; then
		pass "libsspools.so exports dlopen and nothing else"
	else
		fail "libsspools.so exports '$exports', expected 'dlopen '"
	fi
	# needed FILE: its DT_NEEDED names, in order, on one line.
	needed() {
		readelf -dW "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' '
	}
	for p in user-linked user_dl-linked; do
		n=$(needed "$bin/$p")
		case $p in
		user-linked) want='libsspools\.so .*libthpool\.so' ;;
		*) want='libsspools\.so' ;;
		esac
		case $san in
		*thread*) want="^libtsan\\.so[^ ]* .*$want" ;;
		*address*) want="^libasan\\.so[^ ]* .*$want" ;;
		esac
		if grep -Eq "$want" <<<"$n"; then
			pass "$p needs, in order: $n"
		else
			fail "$p needs '$n', expected /$want/"
		fi
	done
else
	echo "note: no readelf: the exports and the link order are not checked"
fi

# -------------------------------------------------------------------- 2
run native-user "$bin/user"
expect native-user "user natively" native-user pool
for v in "" _now _noplt; do
	run "native-dl$v" "$bin/user_dl" "$libs/libplugin$v.so"
	expect "native-dl$v" "user_dl with libplugin$v.so natively" native-dl pool
done

# -------------------------------------------------------------------- 3
run off env SMOLSCALE_STATS=1 "$bin/user-linked"
if r=$(report off); then
	fail "user-linked without SMOLSCALE_POOLS: sanitizer report (exit $rc): $r"
	show off
elif [ "$rc" = 0 ] && cmp -s "$work/native-user.out" "$work/off.out" &&
	! grep -q ' pool_items=[1-9]' "$work/off.err"; then
	pass "user-linked without SMOLSCALE_POOLS: nothing rerouted, the same output as natively"
else
	fail "user-linked without SMOLSCALE_POOLS (exit $rc)"
	show off
fi

# -------------------------------------------------------------------- 4
run thpool env SMOLSCALE_POOLS="$confs/thpool.conf" SMOLSCALE_STATS=1 "$bin/user-linked"
expect thpool "user-linked with thpool.conf" native-user stats

# -------------------------------------------------------------------- 5
for v in "" _now _noplt; do
	run "tpool-dl$v" env SMOLSCALE_POOLS="$confs/tpool.conf" SMOLSCALE_STATS=1 \
		"$bin/user_dl-linked" "$libs/libplugin$v.so"
	expect "tpool-dl$v" "user_dl-linked, libplugin$v.so loaded after start, with tpool.conf" native-dl stats
done

echo "$passes passed, $fails failed${san:+ (sanitizer build: SANITIZE=$san)}"
[ "$fails" = 0 ]
