#!/usr/bin/env bash
# tests/shim/run.sh - integration tests of libsmolscale-preload.so.
#
# Each case is one program (tests/shim/*.c, *.cc, or pigz / sqlite3) with
# deterministic output.  It runs in these modes, and every preloaded run
# must match the native one: same stdout, same exit status, same stderr
# less the preload's stats line.
#
#   native  no preload: the reference; it must itself pass (a case whose
#           native run fails is reported as broken)
#   off     LD_PRELOAD, SMOLSCALE_STATS=1, routing off: every stats line
#           says pthreads_rerouted=0
#   on      LD_PRELOAD, SMOLSCALE_PTHREAD=1, SMOLSCALE_STATS=1: threads are
#           rerouted (pthreads_rerouted>0, or the exact count the case
#           expects, or 0 for threads that must stay real)
#   quiet   LD_PRELOAD, SMOLSCALE_PTHREAD=1, no SMOLSCALE_STATS (some
#           cases): stderr byte-identical to native; nothing is printed
#           unless asked for
#
# Cases of kind "extra" test POSIX semantics beyond the preload's stated
# contract (__thread variables, signal masks, thread_local, main ending
# with pthread_exit); their failures are reported as NOTE and do not fail
# the suite.
#
# Environment (tests/Makefile.am): SS_PRELOAD, SS_TEST_HELPER_DIR,
# SS_SANITIZER_BUILD.  SS_SHIM_CASES (a space-separated list of case ids
# or globs) runs only those; SS_SHIM_KEEP=1 keeps the work directory.
# Exit: 1 on any failure, 77 when everything ran passed but a case was
# skipped (pigz or sqlite3 not installed) or in a sanitizer build, else 0.
set -u
# The lines of the stats report (SMOLSCALE_STATS=1), which only the
# preloaded side prints: the counters, one per worker, the stall lines.
report_lines='^smolscale: (stats |worker [0-9]+ state=|stall-reports |stall-site )'
export LC_ALL=C

if [ -n "${SS_SANITIZER_BUILD:-}" ]; then
	echo "skipped: sanitizer build (SANITIZE=$SS_SANITIZER_BUILD): a sanitized" \
		"library cannot be preloaded into other programs"
	exit 77
fi
# require_env, selected ID, describe_rc RC
. "$(dirname "$0")/../lib.sh"
require_env SS_PRELOAD SS_TEST_HELPER_DIR
if [ ! -f "$SS_PRELOAD" ]; then
	echo "FAIL: the preload library $SS_PRELOAD was not built"
	exit 1
fi
bin=$SS_TEST_HELPER_DIR/shim
for p in semantics cxx forkjoin waiters echo forkexec hostile; do
	if [ ! -x "$bin/$p" ]; then
		echo "FAIL: test program $bin/$p was not built"
		exit 1
	fi
done

# Nothing of the caller's smolscale settings leaks into the runs.
unset LD_PRELOAD
for v in $(compgen -e | grep '^SMOLSCALE_'); do
	unset "$v"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ss-shim.XXXXXX") || exit 1
if [ "${SS_SHIM_KEEP:-}" = 1 ]; then
	echo "work directory: $work"
else
	trap 'rm -rf "$work"' EXIT
fi

npass=0
nfail=0
nnote=0
nskip=0
summary=()
started=$SECONDS

# Cases that also get a "quiet" run (routing on, no stats requested).
quiet_cases=(semantics-core cxx-core waiters-condvar forkexec-threads forkexec-system
	hostile-exitmain hostile-sigwait hostile-daemon pigz sqlite3)


# run MODE ID TIMEOUT CMD... -> $work/ID.MODE.{out,err,rc}; cwd $work/ID.MODE.d
run() {
	local mode=$1 id=$2 limit=$3 rc
	shift 3
	local -a envs=()
	case $mode in
	native) ;;
	off) envs=(LD_PRELOAD="$SS_PRELOAD" SMOLSCALE_STATS=1) ;;
	on) envs=(LD_PRELOAD="$SS_PRELOAD" SMOLSCALE_PTHREAD=1 SMOLSCALE_STATS=1) ;;
	quiet) envs=(LD_PRELOAD="$SS_PRELOAD" SMOLSCALE_PTHREAD=1) ;;
	esac
	mkdir -p "$work/$id.$mode.d"
	(cd "$work/$id.$mode.d" &&
		exec env "${envs[@]}" timeout -k 5 "$limit" "$@" \
			>"$work/$id.$mode.out" 2>"$work/$id.$mode.err" </dev/null)
	rc=$?
	echo "$rc" >"$work/$id.$mode.rc"
}

# The pthreads_rerouted values of the stats lines in FILE, one a line
# ("missing" for a stats line without the field).
rerouted_values() {
	grep -a '^smolscale: stats' "$1" | while IFS= read -r line; do
		if [[ $line =~ (^|[[:space:]])pthreads_rerouted=([0-9]+) ]]; then
			echo "${BASH_REMATCH[2]}"
		else
			echo missing
		fi
	done
}

# Appends to the reasons array: problems with MODE's run against native.
compare_mode() {
	local mode=$1 id=$2 stats=$3 limit=$4
	local base=$work/$id rc nrc vals n max v
	rc=$(cat "$base.$mode.rc")
	nrc=$(cat "$base.native.rc")
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		reasons+=("$mode: timed out after ${limit}s (hang); stdout so far: $(tail -n 2 "$base.$mode.out" | tr '\n' '|')")
		return
	fi
	if [ "$rc" != "$nrc" ]; then
		reasons+=("$mode: $(describe_rc "$rc"), natively $(describe_rc "$nrc")")
	fi
	if ! cmp -s "$base.native.out" "$base.$mode.out"; then
		reasons+=("$mode: stdout differs from native: $(diff "$base.native.out" "$base.$mode.out" | grep '^[<>]' | head -n 4 | tr '\n' '|')")
	fi
	if [ "$mode" = quiet ]; then
		if ! cmp -s "$base.native.err" "$base.$mode.err"; then
			reasons+=("quiet: stderr differs from native (printed without being asked): $(diff "$base.native.err" "$base.$mode.err" | grep '^[<>]' | head -n 3 | tr '\n' '|')")
		fi
		return
	fi
	if ! cmp -s "$base.native.err" <(grep -avE "$report_lines" "$base.$mode.err"); then
		reasons+=("$mode: stderr (less stats lines) differs from native: $(diff "$base.native.err" <(grep -avE "$report_lines" "$base.$mode.err") | grep '^[<>]' | head -n 3 | tr '\n' '|')")
	fi
	[ "$stats" = - ] && return
	mapfile -t vals < <(rerouted_values "$base.$mode.err")
	n=${#vals[@]}
	if [ "$n" = 0 ]; then
		reasons+=("$mode: no 'smolscale: stats' line on stderr with SMOLSCALE_STATS=1")
		return
	fi
	max=0
	for v in "${vals[@]}"; do
		if [ "$v" = missing ]; then
			reasons+=("$mode: stats line without pthreads_rerouted=N")
			return
		fi
		[ "$v" -gt "$max" ] && max=$v
	done
	if [ "$mode" = off ]; then
		[ "$max" != 0 ] && reasons+=("off: pthreads_rerouted=$max with routing off, expected 0")
		return
	fi
	case $stats in
	'>0')
		[ "$max" = 0 ] && reasons+=("on: pthreads_rerouted=0 in every stats line ($n), expected > 0: nothing was rerouted")
		;;
	=*)
		if [ "$n" != 1 ]; then
			reasons+=("on: $n stats lines, expected one")
		elif [ "${vals[0]}" != "${stats#=}" ]; then
			reasons+=("on: pthreads_rerouted=${vals[0]}, expected ${stats#=}")
		fi
		;;
	esac
}

# t ID KIND RC STATS TIMEOUT CMD...
#   KIND   contract (a failure fails the suite) or extra (NOTE)
#   RC     the exit status the program has natively
#   STATS  what SMOLSCALE_PTHREAD=1 must report: '>0', '=N', or '-' (the
#          process replaces itself with exec: its stats line is not read)
t() {
	local id=$1 kind=$2 want_rc=$3 stats=$4 limit=$5 t0 mode nrc
	shift 5
	selected "$id" "${SS_SHIM_CASES:-}" || return 0
	reasons=()
	t0=$SECONDS
	run native "$id" "$limit" "$@"
	nrc=$(cat "$work/$id.native.rc")
	if [ "$nrc" != "$want_rc" ] || grep -aq 'FAIL' "$work/$id.native.out"; then
		reasons+=("BROKEN natively: $(describe_rc "$nrc") (expected exit $want_rc); $(grep -a FAIL "$work/$id.native.out" | head -n 3 | tr '\n' '|') $(head -c 300 "$work/$id.native.err" | tr '\n' '|')")
	else
		local modes="off on" q
		for q in "${quiet_cases[@]}"; do
			[ "$q" = "$id" ] && modes="off on quiet"
		done
		for mode in $modes; do
			run "$mode" "$id" "$limit" "$@"
			compare_mode "$mode" "$id" "$stats" "$limit"
		done
	fi
	{
		echo "---- $id ($kind, $((SECONDS - t0))s): $*"
		for mode in native off on quiet; do
			[ -f "$work/$id.$mode.rc" ] || continue
			echo "  $mode: $(describe_rc "$(cat "$work/$id.$mode.rc")"); stats: $(grep -a '^smolscale: stats' "$work/$id.$mode.err" | head -n 3 | tr '\n' '|')"
		done
		if [ "$id" = semantics-core ] || [ "$id" = semantics-extra ] || [ "$id" = cxx-core ]; then
			grep -a FAIL "$work/$id.on.out" 2>/dev/null | sed 's/^/  on: /'
		fi
	} >>"$work/details.log"
	if [ ${#reasons[@]} = 0 ]; then
		npass=$((npass + 1))
		summary+=("PASS  $id")
	elif [ "$kind" = extra ]; then
		nnote=$((nnote + 1))
		summary+=("NOTE  $id (beyond the contract): $(printf '%s; ' "${reasons[@]}")")
	else
		nfail=$((nfail + 1))
		summary+=("FAIL  $id: $(printf '%s; ' "${reasons[@]}")")
	fi
	echo "${summary[-1]}"
	# per-check lines of the semantic programs, for the failures
	if [ ${#reasons[@]} != 0 ] && [ -f "$work/$id.on.out" ]; then
		grep -a ': FAIL' "$work/$id.on.out" | head -n 40 | sed 's/^/        on: /'
	fi
}

skip() {
	selected "$1" "${SS_SHIM_CASES:-}" || return 0
	nskip=$((nskip + 1))
	summary+=("SKIP  $1: $2")
	echo "SKIP  $1: $2"
}

# ---------------------------------------------------------------- cases

echo "shim tests: preload $SS_PRELOAD"

# The contract's semantics, one line per check.
t semantics-core contract 0 '>0' 120 "$bin/semantics" core
t semantics-realattrs contract 0 =0 60 "$bin/semantics" realattrs
# A 128 KiB stack and a detached thread are routed; a guard size other
# than the default stays real (shim/pthread.c attr_routable).
t semantics-routeattrs contract 0 =2 60 "$bin/semantics" routeattrs
t cxx-core contract 0 '>0' 60 "$bin/cxx" core
# Canceled before it started, a thread runs up to its first cancellation
# point and is cancelled there, as natively: one worker, busy with a
# spinning thread, and no hand-off for 60 s while the victims are queued.
t cancel-unstarted contract 0 '>0' 30 env SMOLSCALE_THREADS=1 SMOLSCALE_STALL_MS=60000 \
	"$bin/semantics" unstarted
# Default attributes mean the default stack size: from RLIMIT_STACK, or
# from pthread_setattr_default_np after the pool has started (a thread
# that then uses 40 MiB of stack must get a stack that big).
t stack-default-rlimit contract 0 '>0' 30 bash -c 'ulimit -s 65536 && exec "$0" stackrlimit' \
	"$bin/semantics"
t stack-default-setattr contract 0 '>0' 30 "$bin/semantics" stacksetdefault

# SMOLSCALE_PTHREAD_ONLY / _SKIP: 1 ssx_alpha_start, 2 ssx_beta_start,
# 4 ssx_gamma_start threads; the count rerouted tells which ones were.
names=("$bin/semantics" names)
t names-all contract 0 =7 30 "${names[@]}"
t names-only-glob contract 0 =2 30 env SMOLSCALE_PTHREAD_ONLY='ssx_beta_*' "${names[@]}"
t names-only-list contract 0 =5 30 env SMOLSCALE_PTHREAD_ONLY='ssx_alpha_start,ssx_gamma_start' "${names[@]}"
t names-only-class contract 0 =3 30 env SMOLSCALE_PTHREAD_ONLY='ssx_[ab]*' "${names[@]}"
t names-only-question contract 0 =1 30 env SMOLSCALE_PTHREAD_ONLY='ssx_?lpha_start' "${names[@]}"
t names-only-nomatch contract 0 =0 30 env SMOLSCALE_PTHREAD_ONLY='no_such_routine' "${names[@]}"
t names-skip contract 0 =5 30 env SMOLSCALE_PTHREAD_SKIP='ssx_beta_*' "${names[@]}"
t names-skip-list contract 0 =1 30 env SMOLSCALE_PTHREAD_SKIP='ssx_beta_*,ssx_gamma_start' "${names[@]}"
t names-skip-all contract 0 =0 30 env SMOLSCALE_PTHREAD_SKIP='*' "${names[@]}"
t names-only-and-skip contract 0 =3 30 env SMOLSCALE_PTHREAD_ONLY='*_start' SMOLSCALE_PTHREAD_SKIP='ssx_gamma_*' "${names[@]}"
# Routing is off unless SMOLSCALE_PTHREAD=1 (this one overrides the "on"
# mode's SMOLSCALE_PTHREAD=1).
t routing-zero contract 0 =0 30 env SMOLSCALE_PTHREAD=0 "${names[@]}"

# Fork-join.
t forkjoin contract 0 '>0' 60 "$bin/forkjoin"

# Threads that wait on each other; "wide" is max(256, 4 x CPUs) + 8
# threads on one barrier, more than the pool's default cap on worker
# threads (the pool adds about 10 a second once past its burst).
for c in barrier bigbarrier condvar pipering pingpong semchain joinchain rwlock spin; do
	t "waiters-$c" contract 0 '>0' 60 "$bin/waiters" "$c"
done
t waiters-wide contract 0 '>0' 45 "$bin/waiters" wide
# The same kind of waiting with the process on one CPU (one worker).
if command -v taskset >/dev/null 2>&1; then
	cpu=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*\([0-9]*\).*/\1/p' /proc/self/status)
	for c in spin semchain bigbarrier pipering; do
		t "waiters-$c-1cpu" contract 0 '>0' 60 taskset -c "${cpu:-0}" "$bin/waiters" "$c"
	done
	t echo-1cpu contract 0 '>0' 60 taskset -c "${cpu:-0}" "$bin/echo" 8 25
fi

# Thread-per-connection echo server on loopback.
t echo contract 0 '>0' 60 "$bin/echo" 8 25

# fork and exec from rerouted threads.
for c in exec exit threads busyfork system popen spawn vfork atfork; do
	t "forkexec-$c" contract 0 '>0' 60 "$bin/forkexec" "$c"
done

# Hard hosts.
t hostile-exitmain contract 3 '>0' 30 "$bin/hostile" exitmain
t hostile-exitthread contract 5 '>0' 30 "$bin/hostile" exitthread
t hostile-execmain contract 0 - 30 "$bin/hostile" execmain
t hostile-execthread contract 0 - 30 "$bin/hostile" execthread
t hostile-sigwait contract 0 '>0' 30 "$bin/hostile" sigwait
t hostile-sigstorm contract 0 '>0' 60 "$bin/hostile" sigstorm
t hostile-closefds contract 0 '>0' 30 "$bin/hostile" closefds
t hostile-daemon contract 0 '>0' 30 "$bin/hostile" daemon

# Real programs that create short-lived threads: byte-identical output.
if selected pigz "${SS_SHIM_CASES:-}"; then
	if ! command -v pigz >/dev/null 2>&1; then
		skip pigz "skipped: pigz not installed (scripts/deps installs it)"
	else
		mkdir -p "$work/pigz-in"
		# 60 files, 1 KB to ~400 KB of text that compresses unevenly
		for i in $(seq 1 60); do
			awk -v s="$i" 'BEGIN { n = (s * s * 37) % 9000 + 30;
				for (k = 0; k < n; k++) printf "%d %d %s\n", k * s, (k * s * 7919) % 104729, (k % 7 ? "row" : "another row") }' \
				>"$work/pigz-in/f$(printf %02d "$i").txt"
		done
		touch -d @1000000000 "$work"/pigz-in/*
		cat >"$work/pigz.sh" <<'EOF'
set -e
in=$1
pigz -p 2 -b 32 -c "$in"/*.txt >all.gz
md5sum <all.gz
pigz -p 2 -d -c all.gz | md5sum
mkdir k
cp -p "$in"/*.txt k/
pigz -p 2 -b 32 k/*.txt
cd k && md5sum ./*.gz | md5sum
pigz -p 2 -t ./*.gz
pigz -p 2 -d ./*.gz
cd .. && cat k/*.txt | md5sum
EOF
		t pigz contract 0 '>0' 120 bash "$work/pigz.sh" "$work/pigz-in"
	fi
fi
if selected sqlite3 "${SS_SHIM_CASES:-}"; then
	if ! command -v sqlite3 >/dev/null 2>&1; then
		skip sqlite3 "skipped: sqlite3 not installed (scripts/deps installs it)"
	else
		cat >"$work/sqlite.sql" <<'EOF'
PRAGMA threads=2;
PRAGMA cache_size=200;
PRAGMA journal_mode=OFF;
PRAGMA synchronous=OFF;
CREATE TABLE t(id INTEGER PRIMARY KEY, a INTEGER, b TEXT);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000)
INSERT INTO t SELECT i, (i * 2654435761) % 1000003, printf('k%08d', (i * 40503) % 999983) FROM c;
CREATE INDEX ta ON t(a);
CREATE INDEX tb ON t(b, a);
PRAGMA integrity_check;
SELECT count(*), sum(a), min(b), max(b) FROM t;
SELECT id, a, b FROM t ORDER BY a LIMIT 5;
SELECT id, a, b FROM t INDEXED BY tb WHERE b >= 'k00500000' ORDER BY b, a LIMIT 5;
.sha3sum
EOF
		t sqlite3 contract 0 '>0' 120 sh -c 'sqlite3 t.db <"$1"' sh "$work/sqlite.sql"
	fi
fi

# Beyond the stated contract: reported, never failing the suite.
t semantics-extra extra 0 '>0' 60 "$bin/semantics" extra
t cxx-extra extra 0 '>0' 60 "$bin/cxx" extra
t hostile-mainexit extra 0 '>0' 15 "$bin/hostile" mainexit

# ---------------------------------------------------------------- summary

echo
echo "==== shim summary ($((SECONDS - started))s): $npass passed, $nfail failed," \
	"$nnote notes, $nskip skipped"
for line in "${summary[@]}"; do
	case $line in
	PASS*) ;;
	*) echo "$line" ;;
	esac
done
echo "---- details"
cat "$work/details.log" 2>/dev/null
if [ "$nfail" != 0 ]; then
	exit 1
fi
if [ "$nskip" != 0 ]; then
	exit 77
fi
exit 0
