#!/usr/bin/env bash
# tests/pools/run.sh - the pool interposer (shim/pools.c): with
# SMOLSCALE_POOLS=FILE the preload reroutes the work that a program gives
# to a thread pool library, described in FILE, onto smolscale's workers.
#
# The programs (tests/pools/*.c) print a checksum line that must be the
# same everywhere, and a line saying which threads ran their items:
#   ran_on_workers=N ran_on_pool=M ran_elsewhere=K
# (smolscale's "ss-worker-N", the pool's own threads, any other).  They
# check after each wait that every item has run, recursively submitted
# ones included, and exit nonzero if not.
#
#   1. natively: every program passes, all variants print the same
#      checksum, every item runs on the pool's threads, and the variants
#      have the relocations they are built for (JUMP_SLOT; BIND_NOW with
#      RELRO; GLOB_DAT; none at all for static_user);
#   2. under the preload without SMOLSCALE_POOLS: nothing is rerouted;
#   3. SMOLSCALE_POOLS=shim/pools/thpool.conf: user, user_now (-z now),
#      user_noplt (-fno-plt): the same checksum, every item on a worker,
#      none on the pool, and SMOLSCALE_STATS=1's line has pool_items=K,
#      K >= items;
#   4. SMOLSCALE_POOLS=shim/pools/tpool.conf: user_dl, which dlopens
#      libplugin.so (and with it libtpool.so) after starting threads, and
#      again after a dlclose: the same, for each plugin variant;
#   5. a description of both libraries in one file, for user and user_dl;
#      cthreadpool.conf, a library the program does not load: nothing
#      happens and the file parses without a message;
#   6. static_user (thpool.c linked into the executable): the same
#      checksum, every item on the pool, and a start-up line
#      "smolscale: ...thpool_add_work...left alone";
#   7. bad descriptions (unknown role, unknown by-value type, no @pool,
#      submit without @fn, unbalanced parentheses, a role alone, a
#      non-integer value, garbage bytes, an empty file, a missing file):
#      a FILE:LINE: message (FILE only for the empty and the missing
#      file), stdout the same as natively, exit status 0; a file with one
#      bad line among good ones still reroutes the good ones.
# No timed assertions; every run has a 120 s timeout (124: it hung).
#
# Environment (tests/Makefile.am): SS_PRELOAD, SS_TEST_HELPER_DIR,
# SS_SRCDIR, SS_SANITIZER_BUILD.  SS_POOLS_KEEP=1 keeps the work
# directory.  Exit: 1 on any failure; 77 in a sanitizer build (only part
# 1 runs there: a sanitized library cannot be preloaded) when part 1
# passed; else 0.
set -u
export LC_ALL=C

. "$(dirname "$0")/../lib.sh"
require_env SS_PRELOAD SS_TEST_HELPER_DIR SS_SRCDIR
bin=$SS_TEST_HELPER_DIR/pools
libs=$bin/.libs
confs=$SS_SRCDIR/../shim/pools
lib=$SS_PRELOAD
san=${SS_SANITIZER_BUILD:-}

for p in user user_now user_noplt static_user user_dl; do
	if [ ! -x "$bin/$p" ]; then
		echo "FAIL: test program $bin/$p was not built"
		exit 1
	fi
done
for v in "" _now _noplt; do
	if [ ! -f "$libs/libplugin$v.so" ]; then
		echo "FAIL: test library $libs/libplugin$v.so was not built"
		exit 1
	fi
done
for c in thpool tpool cthreadpool; do
	if [ ! -f "$confs/$c.conf" ]; then
		echo "FAIL: description $confs/$c.conf is missing"
		exit 1
	fi
done

# Nothing of the caller's smolscale settings leaks into the runs.
unset LD_PRELOAD
for v in $(compgen -e | grep '^SMOLSCALE_'); do
	unset "$v"
done
# libplugin.so finds libtpool.so next to it in the build tree.
export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

work=$(mktemp -d "${TMPDIR:-/tmp}/ss-pools.XXXXXX") || exit 1
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
	sed -n '1,30p' "$work/$1.err" | sed 's/^/    err: /'
	sed -n '1,10p' "$work/$1.out" | sed 's/^/    out: /'
}

# The checksum lines of a run, its items (summed over them), and its
# ran_on_* counts.
sums() { grep '^checksum=' "$work/$1.out"; }
items() { sums "$1" | sed -n 's/.* items=\([0-9]*\).*/\1/p' | awk '{ n += $1 } END { print n + 0 }'; }
ran() {
	local key=$2
	sed -n "s/.*\<$key=\([0-9]*\).*/\1/p" "$work/$1.out" | tail -1
}
stat_items() { grep -Eo ' pool_items=[0-9]+' "$work/$1.err" | tail -1 | cut -d= -f2; }

# expect NAME WHAT REF MODE: NAME's run exited 0 and printed REF's
# checksum lines (REF's run is native and passed), and its items ran:
#   pool      all on the pool's threads (native, or left alone)
#   workers   all on smolscale's workers, none on the pool
#   stats     as workers, and the stats line says pool_items >= items
#   some      as natively's checksum, and some items on the workers
# Says ok or FAIL with what differs; returns 1 on failure.
expect() {
	local name=$1 what=$2 ref=$3 mode=$4
	local why="" n w p e k
	n=$(items "$name")
	w=$(ran "$name" ran_on_workers)
	p=$(ran "$name" ran_on_pool)
	e=$(ran "$name" ran_elsewhere)
	if [ "$rc" != 0 ]; then
		why="exit $rc"
	elif [ -z "$(sums "$name")" ] || [ -z "$w" ] || [ -z "$p" ]; then
		why="no checksum or ran_on_* line"
	elif [ "$(sums "$name")" != "$(sums "$ref")" ]; then
		why="checksum $(sums "$name" | head -1), natively $(sums "$ref" | head -1)"
	else
		case $mode in
		pool)
			[ "$w" = 0 ] && [ "$p" = "$n" ] ||
				why="ran_on_workers=$w ran_on_pool=$p ran_elsewhere=${e:-?}, expected 0 and $n"
			;;
		workers | stats)
			[ "$w" = "$n" ] && [ "$p" = 0 ] ||
				why="ran_on_workers=$w ran_on_pool=$p ran_elsewhere=${e:-?}, expected $n and 0"
			if [ -z "$why" ] && [ "$mode" = stats ]; then
				k=$(stat_items "$name")
				if [ -z "$k" ]; then
					why="no pool_items= in the SMOLSCALE_STATS line"
				elif [ "$k" -lt "$n" ]; then
					why="pool_items=$k < $n items"
				fi
			fi
			;;
		some)
			[ "${w:-0}" -gt 0 ] ||
				why="ran_on_workers=$w ran_on_pool=$p: nothing rerouted"
			;;
		esac
	fi
	if [ -z "$why" ]; then
		pass "$what ($(sums "$name" | head -1); ran_on_workers=$w ran_on_pool=$p${k:+ pool_items=$k})"
		return 0
	fi
	fail "$what: $why"
	show "$name"
	return 1
}

# quiet NAME WHAT CONF: no FILE:LINE: message about CONF in NAME's stderr.
quiet() {
	local name=$1 what=$2 base
	base=$(basename "$3")
	if grep -Eq "$base:[0-9]+:" "$work/$name.err"; then
		fail "$what: messages about $base"
		grep -E "$base:[0-9]+:" "$work/$name.err" | head -5 | sed 's/^/    /'
		return 1
	fi
	return 0
}

# -------------------------------------------------------------------- 1
variants="user user_now user_noplt static_user"
for p in $variants; do
	run "native-$p" "$bin/$p"
	expect "native-$p" "$p natively" native-user pool
done
for v in "" _now _noplt; do
	run "native-dl$v" "$bin/user_dl" "$libs/libplugin$v.so"
	expect "native-dl$v" "user_dl with libplugin$v.so natively" native-dl pool
done
if [ "$(sums native-dl | sort -u | wc -l)" != 1 ]; then
	fail "user_dl: another checksum after the dlclose and second dlopen"
fi

# relocs FILE SYMBOL: the kinds of the relocations naming SYMBOL in FILE
# (JUMP_SLOT, GLOB_DAT, ...; R_X86_64_JUMP_SLOT, R_AARCH64_JUMP_SLOT...).
relocs() {
	readelf -rW "$1" 2>/dev/null | awk -v s="$2" '$5 == s {
		t = $3
		if (t ~ /JUMP_SLOT$/) t = "JUMP_SLOT"
		else if (t ~ /GLOB_DAT$/) t = "GLOB_DAT"
		print t
	}' | sort -u | tr '\n' ' '
}
if command -v readelf >/dev/null; then
	shape() {
		local what=$1 got=$2 want=$3
		if [ "$got" = "$want" ]; then
			pass "$what"
		else
			fail "$what: got '$got', expected '$want'"
		fi
	}
	now() {
		local d
		d=$(readelf -dW "$1")
		if grep -q 'BIND_NOW' <<<"$d" || grep -Eq 'FLAGS_1.* NOW' <<<"$d"; then
			readelf -lW "$1" | grep -q GNU_RELRO && echo now+relro && return
		fi
		echo lazy
	}
	shape "user calls thpool_add_work through the PLT" "$(relocs "$bin/user" thpool_add_work)" "JUMP_SLOT "
	shape "user_now is linked -z now with RELRO" "$(now "$bin/user_now")" now+relro
	shape "user_noplt calls thpool_add_work through the GOT" "$(relocs "$bin/user_noplt" thpool_add_work)" "GLOB_DAT "
	shape "static_user calls thpool_add_work directly" "$(relocs "$bin/static_user" thpool_add_work)" ""
	if readelf --dyn-syms -W "$bin/static_user" | awk '$8 == "thpool_add_work" && $7 != "UND"' | grep -q .; then
		pass "static_user exports its thpool_add_work"
	else
		fail "static_user does not export thpool_add_work (-rdynamic)"
	fi
	shape "libplugin calls tpool_add_work through the PLT" "$(relocs "$libs/libplugin.so" tpool_add_work)" "JUMP_SLOT "
	shape "libplugin_now is linked -z now with RELRO" "$(now "$libs/libplugin_now.so")" now+relro
	shape "libplugin_noplt calls tpool_add_work through the GOT" "$(relocs "$libs/libplugin_noplt.so" tpool_add_work)" "GLOB_DAT "
	if readelf -dW "$libs/libplugin.so" | grep -q 'NEEDED.*\[libtpool\.so\]' &&
		! readelf -dW "$bin/user_dl" | grep -q 'NEEDED.*pool'; then
		pass "libtpool.so comes with libplugin.so, not with user_dl"
	else
		fail "libplugin.so does not need libtpool.so, or user_dl needs a pool library"
	fi
else
	echo "note: no readelf: the variants' relocations are not checked"
fi

if [ -n "$san" ]; then
	echo "note: sanitizer build (SANITIZE=$san): the preloaded runs are skipped"
	echo "$passes passed, $fails failed"
	[ "$fails" = 0 ] || exit 1
	exit 77
fi
if [ ! -f "$lib" ]; then
	fail "the preload library $lib was not built"
	echo "$passes passed, $fails failed"
	exit 1
fi
P=(env LD_PRELOAD="$lib")

# -------------------------------------------------------------------- 2
run off "${P[@]}" SMOLSCALE_STATS=1 "$bin/user"
if [ "$rc" = 0 ] && cmp -s "$work/native-user.out" "$work/off.out" &&
	! grep -q ' pool_items=[1-9]' "$work/off.err"; then
	pass "SMOLSCALE_POOLS unset: nothing rerouted, the same output as natively"
else
	fail "SMOLSCALE_POOLS unset (exit $rc)"
	show off
fi

# -------------------------------------------------------------------- 3
for p in user user_now user_noplt; do
	run "thpool-$p" "${P[@]}" SMOLSCALE_POOLS="$confs/thpool.conf" SMOLSCALE_STATS=1 "$bin/$p"
	expect "thpool-$p" "$p with thpool.conf" native-user stats &&
		quiet "thpool-$p" "$p with thpool.conf" thpool.conf
done
run thpool-nostats "${P[@]}" SMOLSCALE_POOLS="$confs/thpool.conf" "$bin/user"
expect thpool-nostats "user with thpool.conf, no SMOLSCALE_STATS" native-user workers

# -------------------------------------------------------------------- 4
for v in "" _now _noplt; do
	run "tpool-dl$v" "${P[@]}" SMOLSCALE_POOLS="$confs/tpool.conf" SMOLSCALE_STATS=1 \
		"$bin/user_dl" "$libs/libplugin$v.so"
	expect "tpool-dl$v" "user_dl, libplugin$v.so loaded after start, with tpool.conf" native-dl stats &&
		quiet "tpool-dl$v" "user_dl with tpool.conf" tpool.conf
done

# -------------------------------------------------------------------- 5
cat "$confs/thpool.conf" "$confs/tpool.conf" >"$work/both.conf"
run both-user "${P[@]}" SMOLSCALE_POOLS="$work/both.conf" SMOLSCALE_STATS=1 "$bin/user"
expect both-user "user with thpool and tpool in one description" native-user stats &&
	quiet both-user "user with both" both.conf
run both-dl "${P[@]}" SMOLSCALE_POOLS="$work/both.conf" SMOLSCALE_STATS=1 "$bin/user_dl" "$libs/libplugin.so"
expect both-dl "user_dl with thpool and tpool in one description" native-dl stats &&
	quiet both-dl "user_dl with both" both.conf
run absent "${P[@]}" SMOLSCALE_POOLS="$confs/cthreadpool.conf" SMOLSCALE_STATS=1 "$bin/user"
if [ "$rc" = 0 ] && cmp -s "$work/native-user.out" "$work/absent.out"; then
	quiet absent "cthreadpool.conf" cthreadpool.conf &&
		pass "cthreadpool.conf (a library user does not load): parsed, nothing rerouted"
else
	fail "cthreadpool.conf with user: exit $rc or other output than natively"
	show absent
fi

# -------------------------------------------------------------------- 6
run static "${P[@]}" SMOLSCALE_POOLS="$confs/thpool.conf" SMOLSCALE_STATS=1 "$bin/static_user"
if expect static "static_user with thpool.conf: left alone" native-user pool; then
	if grep -Eq 'smolscale: .*thpool_add_work.*left alone' "$work/static.err"; then
		pass "static_user: the interposer says it leaves thpool_add_work alone"
	else
		fail "static_user: no line 'smolscale: ...thpool_add_work...left alone' on stderr"
		show static
	fi
fi

# -------------------------------------------------------------------- 7
bad=$work/bad
mkdir -p "$bad"
# badfile NAME LINE TEXT...: a description with TEXT (lines) whose line
# LINE is the bad one; the lines before it are a comment, a blank line
# and a good type line.
badfile() {
	local name=$1 line=$2
	shift 2
	{
		echo "# $name: a bad description for tests/pools/run.sh"
		echo
		echo "type threadpool = void *"
		printf '%s\n' "$@"
	} >"$bad/$name"
	echo "$line" >"$bad/$name.line"
}
badfile role.conf 4 'sumbit int thpool_add_work(threadpool @pool, void (*@fn)(void *), void *@arg) = 0'
badfile type.conf 4 'submit int thpool_add_work(thread_pool @pool, void (*@fn)(void *), void *@arg) = 0'
badfile nopool.conf 5 '   # the pool is not marked' \
	'submit int thpool_add_work(threadpool pool, void (*@fn)(void *), void *@arg) = 0'
badfile nofn.conf 4 'submit int thpool_add_work(threadpool @pool, void (*fn)(void *), void *@arg) = 0'
badfile parens.conf 4 'submit int thpool_add_work(threadpool @pool, void (*@fn)(void *), void *@arg = 0'
badfile parens2.conf 4 'submit int thpool_add_work(threadpool @pool, void (*@fn(void *), void *@arg) = 0'
badfile roleonly.conf 4 'submit'
badfile value.conf 4 'submit int thpool_add_work(threadpool @pool, void (*@fn)(void *), void *@arg) = yes'
printf '\xff\xfe\x80submit \x01\x02(((\x9b\n\x00\x00\x7fjunk)\n\xc3\x28 wait\n' >"$bad/garbage.conf"
echo 1 >"$bad/garbage.conf.line"
: >"$bad/empty.conf"
echo - >"$bad/empty.conf.line"
echo - >"$bad/missing.conf.line"

for f in role type nopool nofn parens parens2 roleonly value garbage empty missing; do
	conf=$bad/$f.conf
	line=$(cat "$bad/$f.conf.line")
	run "bad-$f" "${P[@]}" SMOLSCALE_POOLS="$conf" "$bin/user"
	if [ "$line" = - ]; then
		want="$f.conf"
		found=$(grep -cF "$f.conf" "$work/bad-$f.err")
	else
		want="$f.conf:$line:"
		found=$(grep -cF "$f.conf:$line:" "$work/bad-$f.err")
	fi
	if [ "$rc" != 0 ]; then
		fail "bad description $f.conf: exit $rc"
		show "bad-$f"
	elif ! cmp -s "$work/native-user.out" "$work/bad-$f.out"; then
		fail "bad description $f.conf: other output than natively"
		show "bad-$f"
	elif [ "$found" = 0 ]; then
		fail "bad description $f.conf: no message naming $want"
		show "bad-$f"
	else
		pass "bad description $f.conf: $(grep -F "$f.conf" "$work/bad-$f.err" | head -1)"
	fi
done

# One bad line among good ones: the good ones still work.
{
	echo "# mixed.conf: thpool.conf with one bad line"
	echo "type threadpool = void *"
	echo "submit  int  thpool_add_work(threadpool @pool, void (*@fn)(void *), void *@arg) = 0"
	echo "flush   void thpool_flush(threadpool @pool)"
	echo "wait    void thpool_wait(threadpool @pool)"
	echo "destroy void thpool_destroy(threadpool @pool)"
} >"$bad/mixed.conf"
run mixed "${P[@]}" SMOLSCALE_POOLS="$bad/mixed.conf" SMOLSCALE_STATS=1 "$bin/user"
if expect mixed "a description with one bad line (unknown role on line 4)" native-user some; then
	if grep -qF "mixed.conf:4:" "$work/mixed.err"; then
		pass "mixed.conf: the bad line is reported: $(grep -F mixed.conf:4: "$work/mixed.err" | head -1)"
	else
		fail "mixed.conf: no message naming mixed.conf:4:"
		show mixed
	fi
fi

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
