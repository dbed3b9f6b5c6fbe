#!/usr/bin/env bash
# tests/hostile/run.sh - hostile hosts under libsmolscale-preload.so
# (issue 8).  tests/shim/run.sh covers exit() from a thread blocked in
# join, exec, sigwait, an SA_RESTART signal storm, closing descriptors
# above 2 between two uses of threads and daemon(); these cases go
# further: fork in a loop, exit() and friends from rerouted threads and
# pool items, signals without SA_RESTART while stall reports signal the
# workers, dlclose of libraries whose work was queued, programs that close
# every descriptor, RLIMIT_NPROC, setuid.
#
# Each case runs natively (the reference; it must pass by itself) and in
# some of these modes:
#
#   on      LD_PRELOAD, SMOLSCALE_PTHREAD=1, SMOLSCALE_STATS=1
#   quiet   LD_PRELOAD, SMOLSCALE_PTHREAD=1: stderr byte-identical
#   stall   as on, plus SMOLSCALE_STALL_REPORT=1 SMOLSCALE_STALL_REPORT_MS=1
#           (ss-diag signals every task past 1 ms) and SMOLSCALE_LOG=FILE:
#           stderr must stay as natively, the reports go to the log
#   log     as on, with SMOLSCALE_LOG=FILE: the report goes to the log
#   pools   as on, plus SMOLSCALE_POOLS=shim/pools/thpool.conf
#   pstall  as stall, plus SMOLSCALE_POOLS=shim/pools/thpool.conf
#
# and must behave as natively: the same exit status, the same stdout (less
# lines that start with "~ ", which a program prints for information: the
# summary shows them), the same stderr less the stats report's lines, the
# same contents of the files the case names, no hang (every run has a
# timeout).  With stats on, a stats line must show rerouted threads or
# pool items where the case says so, and the report's stall-site lines
# must be well formed.
#
# RLIMIT_NPROC does not apply to root, and the setuid cases need root: as
# root, the nproc cases run as user 65534 (setpriv, else runuser) from a
# copy of the programs and the preload in a world-readable directory; not
# as root, they are skipped (the limit would count every process of the
# user, which a parallel make check changes) and so are the setuid ones.
#
# Environment (tests/Makefile.am): SS_PRELOAD, SS_TEST_HELPER_DIR,
# SS_SRCDIR, SS_SMOLSCALE, SS_SANITIZER_BUILD.  SS_HOSTILE_CASES (a
# space-separated list of case ids or globs) runs only those;
# SS_HOSTILE_KEEP=1 keeps the work directory.  Exit: 1 on any failure, 77
# in a sanitizer build or when everything that ran passed but a case was
# skipped, else 0.
set -u
export LC_ALL=C
# The lines of the stats report (SMOLSCALE_STATS=1), which only the
# preloaded side prints.
report_lines='^smolscale: (stats |worker [0-9]+ state=|stall-reports |stall-site )'
# A well-formed stall-site line.
site_line='^smolscale: stall-site [1-5] count=[1-9][0-9]{0,9} max_ms=[0-9]{1,10} total_ms=[0-9]{1,12} entry=[^ ].* at '

if [ -n "${SS_SANITIZER_BUILD:-}" ]; then
	echo "skipped: sanitizer build (SANITIZE=$SS_SANITIZER_BUILD): a sanitized" \
		"library cannot be preloaded into other programs"
	exit 77
fi
# require_env, selected ID, describe_rc RC
. "$(dirname "$0")/../lib.sh"
require_env SS_PRELOAD SS_TEST_HELPER_DIR SS_SRCDIR SS_SMOLSCALE
if [ ! -f "$SS_PRELOAD" ]; then
	echo "FAIL: the preload library $SS_PRELOAD was not built"
	exit 1
fi
bin=$SS_TEST_HELPER_DIR/hostile
libs=$bin/.libs
conf=$SS_SRCDIR/../shim/pools/thpool.conf
for p in "$bin/hosts" "$bin/dlhost" "$libs/libhplug_thr.so" "$libs/libhplug_thp.so" \
	"$libs/libhplug_ctor.so" "$SS_SMOLSCALE" "$conf"; do
	if [ ! -e "$p" ]; then
		echo "FAIL: $p is missing (not built?)"
		exit 1
	fi
done
# GLib's programs are built only with GLib.
have_glib=yes
[ -x "$bin/ghosts" ] && [ -f "$libs/libhplug_gtp.so" ] || have_glib=no

# Nothing of the caller's smolscale settings leaks into the runs.
unset LD_PRELOAD
for v in $(compgen -e | grep '^SMOLSCALE_'); do
	unset "$v"
done
# The plugins find libthpool.so in the build tree.
export LD_LIBRARY_PATH=$SS_TEST_HELPER_DIR/pools/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

work=$(mktemp -d "${TMPDIR:-/tmp}/ss-hostile.XXXXXX") || exit 1
chmod 755 "$work"
if [ "${SS_HOSTILE_KEEP:-}" = 1 ]; then
	echo "work directory: $work"
else
	trap 'rm -rf "$work"' EXIT
fi

npass=0 nfail=0 nskip=0
summary=()
notes=()
started=$SECONDS


# The run's user: empty (this one), or "nobody" (user 65534, for the
# nproc cases run as root).
runas=
runas_cmd=()
preload=$SS_PRELOAD

# mode_env MODE DIR: the environment of MODE, one assignment a line.
mode_env() {
	local mode=$1 d=$2
	case $mode in
	native) ;;
	on) printf '%s\n' "LD_PRELOAD=$preload" SMOLSCALE_PTHREAD=1 SMOLSCALE_STATS=1 ;;
	quiet) printf '%s\n' "LD_PRELOAD=$preload" SMOLSCALE_PTHREAD=1 ;;
	stall | pstall)
		printf '%s\n' "LD_PRELOAD=$preload" SMOLSCALE_PTHREAD=1 SMOLSCALE_STATS=1 \
			SMOLSCALE_STALL_REPORT=1 SMOLSCALE_STALL_REPORT_MS=1 \
			"SMOLSCALE_LOG=$d.log"
		[ "$mode" = pstall ] && echo "SMOLSCALE_POOLS=$conf"
		;;
	log) printf '%s\n' "LD_PRELOAD=$preload" SMOLSCALE_PTHREAD=1 SMOLSCALE_STATS=1 \
		"SMOLSCALE_LOG=$d.log" ;;
	pools) printf '%s\n' "LD_PRELOAD=$preload" SMOLSCALE_PTHREAD=1 SMOLSCALE_STATS=1 \
		"SMOLSCALE_POOLS=$conf" ;;
	esac
	# The case's extra settings (extra_env), in every preloaded mode.
	if [ "$mode" != native ]; then
		for v in ${extra_env:-}; do
			echo "$v"
		done
	fi
}

# Waits (up to $2 s) for file $1; 0 if it came.
await() {
	local f=$1 i
	for ((i = 0; i < $2 * 20; i++)); do
		[ -f "$f" ] && return 0
		sleep 0.05
	done
	return 1
}

# `smolscale stats PID` into $base.$mode.statsN.{out,err,rc}
stats_of() {
	local pid=$1 out=$2
	timeout -k 5 30 "$SS_SMOLSCALE" stats --timeout 5000 "$pid" >"$out.out" 2>"$out.err"
	echo $? >"$out.rc"
}

# run MODE ID LIMIT CMD... -> $work/ID.MODE.{out,err,rc}; cwd $work/ID.MODE.d
run() {
	local mode=$1 id=$2 limit=$3 rc
	shift 3
	local d=$work/$id.$mode.d base=$work/$id.$mode
	local -a envs
	mkdir -p "$d"
	[ -n "$runas" ] && chown 65534:65534 "$d"
	mapfile -t envs < <(mode_env "$mode" "$d")
	if [ "$handshake" = 1 ]; then
		# The program pauses twice (ready1/go1, ready2/go2); `smolscale
		# stats` asks it for its report at each pause.
		(cd "$d" && exec timeout -k 5 "$limit" "${runas_cmd[@]}" env "${envs[@]}" "$@" \
			>"$base.out" 2>"$base.err" </dev/null) &
		local bg=$! pid
		if await "$d/ready1" "$limit"; then
			pid=$(cat "$d/ready1")
			stats_of "$pid" "$base.stats1"
			touch "$d/go1"
			if await "$d/ready2" "$limit"; then
				pid=$(cat "$d/ready2")
				stats_of "$pid" "$base.stats2"
			fi
		fi
		touch "$d/go1" "$d/go2"
		wait "$bg"
		rc=$?
	else
		(cd "$d" && exec timeout -k 5 "$limit" "${runas_cmd[@]}" env "${envs[@]}" "$@" \
			>"$base.out" 2>"$base.err" </dev/null)
		rc=$?
	fi
	echo "$rc" >"$base.rc"
}

# The counters of the stats lines in FILE: what was rerouted, summed over
# pthreads_rerouted, gpools (pools on the layer), gpool_items and
# pool_items, one line per stats line.
rerouted_values() {
	grep -a '^smolscale: stats' "$1" 2>/dev/null | while IFS= read -r line; do
		local n=0 k
		for k in pthreads_rerouted gpools gpool_items pool_items; do
			if [[ $line =~ (^|[[:space:]])$k=([0-9]+) ]]; then
				n=$((n + BASH_REMATCH[2]))
			fi
		done
		echo "$n"
	done
}

# Appends to the reasons array: problems with MODE's run against native.
compare_mode() {
	local mode=$1 id=$2 stats=$3 limit=$4 files=$5
	local base=$work/$id rc nrc f report max v
	rc=$(cat "$base.$mode.rc")
	nrc=$(cat "$base.native.rc")
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		reasons+=("$mode: timed out after ${limit}s (hang); stdout so far: $(tail -n 2 "$base.$mode.out" | tr '\n' '|')")
		return
	fi
	if [ "$rc" != "$nrc" ]; then
		reasons+=("$mode: $(describe_rc "$rc"), natively $(describe_rc "$nrc")")
	fi
	if ! cmp -s <(grep -av '^~ ' "$base.native.out") <(grep -av '^~ ' "$base.$mode.out"); then
		reasons+=("$mode: stdout differs from native: $(diff <(grep -av '^~ ' "$base.native.out") <(grep -av '^~ ' "$base.$mode.out") | grep '^[<>]' | head -n 4 | tr '\n' '|')")
	fi
	if [ "$mode" = quiet ]; then
		if ! cmp -s "$base.native.err" "$base.$mode.err"; then
			reasons+=("quiet: stderr differs from native: $(diff "$base.native.err" "$base.$mode.err" | grep '^[<>]' | head -n 3 | tr '\n' '|')")
		fi
	elif ! cmp -s "$base.native.err" <(grep -avE "$report_lines" "$base.$mode.err"); then
		reasons+=("$mode: stderr (less stats lines) differs from native: $(diff "$base.native.err" <(grep -avE "$report_lines" "$base.$mode.err") | grep '^[<>]' | head -n 3 | tr '\n' '|')")
	fi
	for f in ${files//,/ }; do
		[ "$f" = - ] && continue
		if ! cmp -s "$base.native.d/$f" "$base.$mode.d/$f"; then
			reasons+=("$mode: $f differs from native: $(diff "$base.native.d/$f" "$base.$mode.d/$f" 2>&1 | grep '^[<>]\|No such' | head -n 3 | tr '\n' '|')")
		fi
	done
	# The report: on stderr, or in the log.
	report=$base.$mode.err
	[ -f "$base.$mode.d.log" ] && report=$base.$mode.d.log
	if grep -aq '^smolscale: stall-site' "$report" 2>/dev/null &&
		grep -a '^smolscale: stall-site' "$report" | grep -avqE "$site_line"; then
		reasons+=("$mode: a malformed stall-site line in the stats report: $(grep -a '^smolscale: stall-site' "$report" | grep -avE "$site_line" | head -n 1 | cut -c1-160)")
	fi
	if [ -n "$log_must" ] && ! grep -aq '^smolscale: stats ' "$log_must" 2>/dev/null; then
		reasons+=("$mode: no stats report in $log_must")
	fi
	if [ "$mode" = stall ] || [ "$mode" = pstall ]; then
		if [ "$stall_needed" = 1 ] && ! grep -aq '^smolscale: stall: ' "$report" 2>/dev/null; then
			reasons+=("$mode: no stall report in SMOLSCALE_LOG ($report): ss-diag signalled nothing")
		fi
	fi
	[ "$stats" = - ] || [ "$mode" = quiet ] && return
	max=0
	while read -r v; do
		[ "$v" -gt "$max" ] && max=$v
	done < <(rerouted_values "$report")
	if [ "$max" = 0 ]; then
		reasons+=("$mode: no stats line with pthreads_rerouted, gpools, gpool_items or pool_items > 0: nothing was rerouted")
	fi
}

# The handshake's checks: `smolscale stats PID` at each pause (PID is
# what the program wrote to readyN) must answer as hs_want says for the
# preloaded runs ("stats": status 0 and a stats line; "none": status 1 and
# "process PID has no smolscale stats"), and never hang; natively it must
# say "none" both times.
check_handshake() {
	local mode=$1 id=$2 base n
	local -a want_of
	base=$work/$id.$mode
	read -r -a want_of <<<"$hs_want"
	for n in 1 2; do
		if [ ! -f "$base.stats$n.rc" ]; then
			reasons+=("$mode: the program never paused a ${n}th time (ready$n)")
			continue
		fi
		local src want_rc=1 want='has no smolscale stats'
		src=$(cat "$base.stats$n.rc")
		if [ "$mode" != native ] && [ "${want_of[n - 1]}" = stats ]; then
			want_rc=0 want=
		fi
		if [ "$src" = 124 ] || [ "$src" = 137 ]; then
			reasons+=("$mode: \`smolscale stats PID\` at pause $n hung")
		elif [ "$src" != "$want_rc" ]; then
			reasons+=("$mode: \`smolscale stats PID\` at pause $n: exit $src, expected $want_rc: $(head -c 200 "$base.stats$n.err" | tr '\n' '|')")
		elif [ -n "$want" ] && ! grep -q "^smolscale: process [0-9]* $want" "$base.stats$n.err"; then
			reasons+=("$mode: \`smolscale stats PID\` at pause $n did not say '$want': $(head -c 200 "$base.stats$n.err" | tr '\n' '|')")
		elif [ -z "$want" ] && ! grep -q '^smolscale: stats threads=' "$base.stats$n.out"; then
			reasons+=("$mode: \`smolscale stats PID\` at pause $n printed no stats line")
		fi
	done
}

# t ID RC STATS MODES FILES LIMIT CMD...
#   RC     the exit status the program has natively
#   STATS  '>0': a stats line must show rerouted work; '-': not checked
#          (the program ends with _exit or quick_exit: no report)
#   MODES  preloaded modes, comma-separated
#   FILES  files of the run's directory to compare, comma-separated, or -
# Settings: handshake=1 and hs_want="stats|none stats|none" (the program
# pauses twice for `smolscale stats`), stall_needed=1 (the stall modes
# must have reported something), extra_env="VAR=VALUE ..." (every
# preloaded mode), log_must=FILE (the stats report must be in FILE).
handshake=0
hs_want=
stall_needed=0
extra_env=
log_must=
t() {
	local id=$1 want_rc=$2 stats=$3 modes=$4 files=$5 limit=$6 t0 mode nrc
	shift 6
	selected "$id" "${SS_HOSTILE_CASES:-}" || return 0
	reasons=()
	t0=$SECONDS
	run native "$id" "$limit" "$@"
	nrc=$(cat "$work/$id.native.rc")
	if [ "$nrc" != "$want_rc" ] || grep -aq 'FAIL' "$work/$id.native.out"; then
		reasons+=("BROKEN natively: $(describe_rc "$nrc") (expected exit $want_rc); $(grep -a FAIL "$work/$id.native.out" | head -n 3 | tr '\n' '|') $(head -c 300 "$work/$id.native.err" | tr '\n' '|')")
	else
		[ "$handshake" = 1 ] && check_handshake native "$id"
		for mode in ${modes//,/ }; do
			run "$mode" "$id" "$limit" "$@"
			compare_mode "$mode" "$id" "$stats" "$limit" "$files"
			[ "$handshake" = 1 ] && check_handshake "$mode" "$id"
		done
	fi
	{
		echo "---- $id ($((SECONDS - t0))s): $*"
		for mode in native ${modes//,/ }; do
			[ -f "$work/$id.$mode.rc" ] || continue
			echo "  $mode: $(describe_rc "$(cat "$work/$id.$mode.rc")");" \
				"$(grep -a '^~ ' "$work/$id.$mode.out" | head -n 2 | tr '\n' '|')" \
				"stall reports: $(cat "$work/$id.$mode.d.log" 2>/dev/null | grep -ac '^smolscale: stall: worker')"
		done
	} >>"$work/details.log"
	# Information lines that differ from native: shown, not compared.
	for mode in ${modes//,/ }; do
		if [ -f "$work/$id.$mode.out" ] &&
			! cmp -s <(grep -a '^~ ' "$work/$id.native.out") <(grep -a '^~ ' "$work/$id.$mode.out"); then
			notes+=("$id: natively: $(grep -a '^~ ' "$work/$id.native.out" | head -n 1 | cut -c3-); $mode: $(grep -a '^~ ' "$work/$id.$mode.out" | head -n 1 | cut -c3-)")
		fi
	done
	if [ ${#reasons[@]} = 0 ]; then
		npass=$((npass + 1))
		summary+=("PASS  $id")
	else
		nfail=$((nfail + 1))
		summary+=("FAIL  $id: $(printf '%s; ' "${reasons[@]}")")
	fi
	echo "${summary[-1]}" | cut -c1-600
}

skip() {
	selected "$1" "${SS_HOSTILE_CASES:-}" || return 0
	nskip=$((nskip + 1))
	summary+=("SKIP  $1: $2")
	echo "SKIP  $1: $2"
}

# ---------------------------------------------------------------- cases

echo "hostile tests: preload $SS_PRELOAD"
h=$bin/hosts

# exit() and friends from a (rerouted) thread.
t exit-inline 7 '>0' on,quiet,stall - 30 "$h" exitinline
t exit-atexit-threads 4 '>0' on,quiet,stall - 30 "$h" exitatexit
t exit-buffered 6 '>0' on,quiet,stall - 30 "$h" exitbuffered
t exit-quick 11 - on,quiet,stall - 30 "$h" quickexit
t exit-underscore 12 - on,quiet,stall - 30 "$h" underexit
t exit-condwait 8 '>0' on,quiet,stall - 30 "$h" exitcondwait

# Signals at a high rate while threads block; stall reports signal the
# workers as well.
stall_needed=1
t signals 0 '>0' on,quiet,stall - 120 "$h" signals

# Descriptors.  With stall reports on, ss-diag loads libunwind, whose
# memory validation (x86-64 libunwind 1.6) would take the two lowest free
# descriptors for good, for a pipe: a program that counts on open()
# returning the lowest free number would get another one (core/diag.c
# redirects it: no descriptor at all).
t closefds-start 0 '>0' on,quiet,log - 60 "$h" closefds-start
t closefds-start-stall 0 '>0' stall - 60 "$h" closefds-start
# closefds-all's descriptor 2 is the program's data file: the stats
# report, which goes to standard error without SMOLSCALE_LOG, would land
# there (as any library's messages to stderr would); with a log it must
# not.
t closefds-all 0 - quiet,log out.txt,data.txt 60 "$h" closefds-all
t closefds-all-stall 0 - stall out.txt,data.txt 60 "$h" closefds-all
# A daemon's pattern: threads, close every descriptor >= 3, pipes of its
# own (the lowest numbers), threads again.  With stall reports on,
# libunwind's own validation pipe once had those numbers: it read from
# and wrote to the program's pipes, or blocked for ever in read() inside
# the capture handler on the program's empty pipe (a hang, 1 run in 10).
t closefds-pipe 0 '>0' on,quiet - 30 "$h" closefds-pipe
t closefds-pipe-stall 0 '>0' stall - 30 "$h" closefds-pipe
# `smolscale stats` finds the region before the program closes its
# descriptors (its data.txt then sits on every number that was open, the
# region's and the log's included), and then says cleanly that it finds
# none.
handshake=1 hs_want="stats none"
t closefds-after 0 '>0' on,quiet,log data.txt 90 "$h" closefds-after
t closefds-after-stall 0 '>0' stall data.txt 90 "$h" closefds-after
stall_needed=0
# Children of a process whose pool runs run no smolscale: `smolscale stats
# CHILD` must say so.  A child of _Fork() (no fork handlers, as with clone
# or a raw fork) keeps the parent's region descriptor: the command must
# see that the region is not the child's (its pid), not print the
# parent's report.
hs_want="none none"
t fork-stats 0 '>0' on - 60 "$h" forkstats
handshake=0 hs_want=""

# dlclose of libraries whose work was queued: the plugins in turn, 3
# rounds; with SMOLSCALE_POOLS the libthpool work is rerouted as well.
plugins=("$libs/libhplug_thr.so" "$libs/libhplug_thp.so" "$libs/libhplug_ctor.so")
[ "$have_glib" = yes ] && plugins+=("$libs/libhplug_gtp.so")
stall_needed=1
t dlclose 0 '>0' on,quiet,pools,stall,pstall - 120 "$bin/dlhost" 3 400 "${plugins[@]}"
stall_needed=0

# GLib: fork in a loop while threads and a GThreadPool run; exit() from
# a pool item.
if [ "$have_glib" = yes ]; then
	# Under the preload a fork of this busy process takes about 10 times
	# as long as natively (the child gets little CPU beside the parent's
	# workers): 200 forks take a minute or two.
	t forkloop-main 0 '>0' on - 300 "$bin/ghosts" forkloop 200 main
	t forkloop-main-50 0 '>0' quiet,stall - 300 "$bin/ghosts" forkloop 50 main
	t forkloop-thread 0 '>0' on,stall - 300 "$bin/ghosts" forkloop 50 thread
	t forkloop-item 0 '>0' on,stall - 300 "$bin/ghosts" forkloop 50 item
	t exit-item 9 '>0' on,quiet,stall - 30 "$bin/ghosts" exititem
else
	for c in forkloop-main forkloop-main-50 forkloop-thread forkloop-item exit-item; do
		skip "$c" "skipped: built without GLib (libglib2.0-dev)"
	done
fi

# setuid: root only.
if [ "$(id -u)" = 0 ]; then
	t setuid-main 0 '>0' on,quiet,stall - 30 "$h" setuid-main
	t setuid-thread 0 '>0' on,quiet,stall - 30 "$h" setuid-thread
	# The log in a directory that only root may write, and nothing
	# written to it before the setuid: the report at exit must still
	# reach it (the preload opens it at load).
	mkdir -m 700 "$work/rootonly"
	extra_env="SMOLSCALE_LOG=$work/rootonly/log" log_must=$work/rootonly/log
	t setuid-log 0 - on - 30 "$h" setuid-main
	extra_env= log_must=
else
	skip setuid-main "skipped: not root"
	skip setuid-thread "skipped: not root"
	skip setuid-log "skipped: not root"
fi

# RLIMIT_NPROC: as user 65534, from copies the user can read.
nproc_cases=(nproc-some-1 nproc-some-3 nproc-some-6 nproc-zero nproc-meet-2 nproc-meet-4)
nproc_ok=
if [ "$(id -u)" != 0 ]; then
	nproc_ok="skipped: not root (RLIMIT_NPROC would count every process of this user)"
elif command -v setpriv >/dev/null 2>&1; then
	runas_cmd=(setpriv --reuid=65534 --regid=65534 --clear-groups)
elif command -v runuser >/dev/null 2>&1 && getent passwd 65534 >/dev/null; then
	runas_cmd=(runuser -u "$(getent passwd 65534 | cut -d: -f1)" --)
else
	nproc_ok="skipped: neither setpriv nor runuser to run as user 65534"
fi
if [ -z "$nproc_ok" ]; then
	mkdir -m 755 "$work/nobody"
	cp "$h" "$SS_PRELOAD" "$work/nobody/" && chmod 755 "$work/nobody"/*
	if ! "${runas_cmd[@]}" "$work/nobody/hosts" nproc-zero >/dev/null 2>&1; then
		nproc_ok="skipped: user 65534 cannot run $work/nobody/hosts"
		runas_cmd=()
	fi
fi
if [ -n "$nproc_ok" ]; then
	for c in "${nproc_cases[@]}"; do
		skip "$c" "$nproc_ok"
	done
else
	runas=nobody
	preload=$work/nobody/$(basename "$SS_PRELOAD")
	hn=$work/nobody/hosts
	# Limit = the user's tasks + 1 or 2: natively 1 or 2 threads.  Had
	# the pool started, its hidden threads (monitor, balancer) would
	# take that allowance, and every pthread_create would fail.
	t nproc-some-1 0 - on - 30 "$hn" nproc-some 1
	t nproc-some-3 0 - on,quiet - 30 "$hn" nproc-some 3
	t nproc-some-6 0 - on,quiet - 30 "$hn" nproc-some 6
	t nproc-zero 0 - on,quiet - 30 "$hn" nproc-zero
	t nproc-meet-2 0 - on - 30 "$hn" nproc-meet 2
	# The created threads wait for each other: rerouted, every
	# pthread_create would succeed, but the pool could not add the
	# workers that run them side by side (a hang).
	t nproc-meet-4 0 - on - 15 "$hn" nproc-meet 4
	runas=
	runas_cmd=()
	preload=$SS_PRELOAD
fi

# ---------------------------------------------------------------- summary

echo
echo "==== hostile summary ($((SECONDS - started))s): $npass passed, $nfail failed," \
	"$nskip skipped"
for line in "${summary[@]}"; do
	case $line in
	PASS*) ;;
	*) echo "$line" ;;
	esac
done
if [ ${#notes[@]} != 0 ]; then
	echo "---- information lines (~) that differ, not compared:"
	printf '  %s\n' "${notes[@]}"
fi
echo "---- details"
cat "$work/details.log"
[ "$nfail" != 0 ] && exit 1
[ "$nskip" != 0 ] && exit 77
exit 0
