#!/usr/bin/env bash
# tests/fault/run.sh - fault injection into the core (issue 8).
#
# fault/fault (fault.c) is a workload over the whole native API, linked
# with the core's allocation and thread-creation calls wrapped.  This
# script
#   1. runs it three times counting only: the calls of each wrapped
#      function (K, the most seen) and their call sites (for
#      pthread_create, the caller of ss__thread_start: which thread);
#   2. runs it once per injected failure, each a process of its own with a
#      time limit, in this order:
#        site     the first call from each call site fails, then its next
#                 calls up to the 8th and its last seen (a sanitizer
#                 build: up to the 2nd, and the last), so that every site
#                 fails, and each of its first calls, whatever the timing;
#        persist  every pthread_create from the N-th on fails for a while
#                 (EAGAIN): the pool must retry with back-off and lose
#                 nothing; and malloc, calloc, mmap, posix_memalign fail
#                 for a while from the middle of the run on;
#        nth      the N-th call of each function fails, N in 1..K (a
#                 sanitizer build: every 4th or 10th);
#      and checks each: no crash (signal, sanitizer report), no hang (time
#      limit), exit status 0 (fault.c's own accounting: every API call
#      kept its contract, every task spawned ran exactly once or was
#      cancelled, none ran that was not spawned).  No run starts past the
#      time budget (FI_BUDGET_S, default 40 s, under a sanitizer 90 s):
#      the plan puts the runs that tell most first;
#   3. prints a table per function and the details of each failure: the
#      injected site and its backtrace (symbolized with addr2line), the
#      program's complaints, and in a normal build the threads' stacks
#      from gdb (a crash: its core, else a run under gdb; a hang: gdb
#      attached to a run of the same case before it is killed).
#
# Environment (tests/Makefile.am): SS_TEST_HELPER_DIR, SS_SANITIZER_BUILD
# or SS_SANITIZER ("address", "thread": fewer runs, longer limits).
# FI_JOBS: runs at once (default: 4 per CPU, at most 16, fewer under a
# sanitizer; the workload mostly waits).  FI_STRIDE: every FI_STRIDE-th
# N only.  FI_BUDGET_S: the time budget in seconds, 0 for none.
# FI_KEEP=1 keeps the work directory.  Exit: 1 on any failure, else 0.
set -u
export LC_ALL=C

. "$(dirname "$0")/../lib.sh"
require_env SS_TEST_HELPER_DIR
prog=$SS_TEST_HELPER_DIR/fault/fault
if [ ! -x "$prog" ]; then
	echo "FAIL: $prog is missing"
	exit 1
fi
san=${SS_SANITIZER_BUILD:-}
[ -n "$san" ] || san=${SS_SANITIZER:-}
case "$san" in
*thread*) san=thread ;;
*address*) san=address ;;
'') ;;
*) san=other ;;
esac

unset LD_PRELOAD
for v in $(compgen -e | grep -E '^(SMOLSCALE_|FI_(MODE|FN|N|SITE|PERSIST_MS|REPORT)$)'); do
	unset "$v"
done
# Installed at load (diag.c), so that the workload's raise() never kills
# it, even when ss-diag could not start.
export SMOLSCALE_STATS_SIGNAL=USR2
# Sanitizers: a report is a failure of the run, found in its stderr.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1}

ncpu=$(nproc 2>/dev/null || echo 2)
# The workload mostly waits (about 0.1 s of CPU in 0.5 s): several runs
# share a CPU.
case "$san" in
'')
	limit=20 stride=${FI_STRIDE:-1} site_calls=8 persist_ms=300
	jobs=${FI_JOBS:-$((ncpu * 4 > 16 ? 16 : ncpu * 4))}
	budget=${FI_BUDGET_S:-40}
	;;
address)
	limit=60 stride=${FI_STRIDE:-4} site_calls=2 persist_ms=400
	jobs=${FI_JOBS:-$((ncpu * 2 > 8 ? 8 : ncpu * 2))}
	budget=${FI_BUDGET_S:-90}
	;;
*)
	limit=120 stride=${FI_STRIDE:-10} site_calls=2 persist_ms=600
	jobs=${FI_JOBS:-$((ncpu > 4 ? 4 : ncpu))}
	budget=${FI_BUDGET_S:-90}
	;;
esac
[ "$jobs" -ge 1 ] || jobs=1

work=$(mktemp -d "${TMPDIR:-/tmp}/ss-fault.XXXXXX") || exit 1
if [ "${FI_KEEP:-0}" = 1 ]; then
	echo "note: work directory $work"
else
	trap 'rm -rf "$work"' EXIT
fi
start=$SECONDS
fails=0
fail() { fails=$((fails + 1)); echo "FAIL: $*"; }

# The link-time address of the executable's start (0 for a PIE): the
# report's offsets plus it are what addr2line takes.
base=$(nm "$prog" 2>/dev/null | awk '$3 == "__executable_start" { print $1 }')
base=$((16#${base:-0}))
# sym OFF: function, file:line (inlined frames joined by " < ") of the
# call before return address OFF.
sym() {
	local a
	a=$(printf '0x%x' $((base + $1 - 1)))
	addr2line -f -i -e "$prog" "$a" 2>/dev/null |
		paste -d' ' - - | sed -E 's#[^ ]*/(core|tests)/#\1/#g; s/ \(discriminator [0-9]+\)//' |
		paste -sd'<' | sed 's/</ < /g'
}

# run_case ID MODE FN N SITE: one run; its result in $work/ID.res:
#   ID MODE FN N SITE RC CLASS FIRED INJSITE MS
run_case() {
	local id=$1 mode=$2 fn=$3 n=$4 site=$5 rc class fired=0 injsite=- t0 l w x y text=
	: >"$work/$id.rep"
	t0=${EPOCHREALTIME/./}
	# A crash leaves a core in the run's directory for gdb (a normal
	# build, where the kernel writes cores as plain files).  Few forks
	# here: they are slow on a loaded machine.
	(
		cd "$work/$id.d" || exit 1
		[ -z "$san" ] && ulimit -c unlimited 2>/dev/null
		FI_MODE=$mode FI_FN=$fn FI_N=$n FI_SITE=$site FI_PERSIST_MS=$persist_ms \
			FI_REPORT=$work/$id.rep exec timeout -k 5 "$limit" "$prog" \
			>"$work/$id.out" 2>"$work/$id.err"
	)
	rc=$?
	t0=$(((${EPOCHREALTIME/./} - t0) / 1000))
	IFS= read -r -d '' text <"$work/$id.err"
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		class=hang
	elif [[ $text == *"ERROR: AddressSanitizer"* || $text == *"ERROR: LeakSanitizer"* ||
		$text == *"WARNING: ThreadSanitizer"* || $text == *"runtime error:"* ]]; then
		class=sanitizer
	elif [ $rc -gt 128 ]; then
		class=crash
	elif [ $rc -eq 3 ]; then
		class=lost
	elif [ $rc -eq 4 ]; then
		class=contract
	elif [ $rc -ne 0 ]; then
		class=exit
	else
		class=ok
	fi
	while read -r l w x y; do
		case "$l" in
		inject) [ "$injsite" != - ] || injsite=$x fired=1 ;;
		injected) fired=$x ;;
		esac
	done <"$work/$id.rep"
	echo "$id $mode $fn $n ${site:--} $rc $class $fired $injsite $t0" >"$work/$id.res"
}

# Up to $jobs runs at once.  (Not $(jobs -r): a command substitution
# that runs `jobs` waits for the running jobs first.)
running=0
throttle() {
	if [ $running -ge "$jobs" ]; then
		wait -n 2>/dev/null
		running=$((running - 1))
	fi
	running=$((running + 1))
}

# ------------------------------------------------------------ 1. count
mkdir "$work/count1.d" "$work/count2.d" "$work/count3.d"
for i in 1 2 3; do
	throttle
	run_case count$i count - 0 "" 2>/dev/null &
done
wait
running=0
declare -A K SITES SITEN
fns="malloc calloc realloc posix_memalign aligned_alloc mmap mprotect memfd_create open_memstream dlopen pthread_create"
for i in 1 2 3; do
	read -r _ _ _ _ _ rc class _ _ <"$work/count$i.res"
	if [ "$class" != ok ]; then
		fail "the workload without injection: $class (exit $rc)"
		sed 's/^/  | /' "$work/count$i.err" | tail -20
		grep -E '^(lost|doubled|ghost|contract)' "$work/count$i.rep" | sed 's/^/  | /'
		continue
	fi
	while read -r what fn a b; do
		case "$what" in
		calls) [ "${K[$fn]:-0}" -ge "$a" ] || K[$fn]=$a ;;
		site)
			[ -n "${SITEN[$fn $a]:-}" ] || SITES[$fn]="${SITES[$fn]:-} $a"
			[ "${SITEN[$fn $a]:-0}" -ge "$b" ] || SITEN[$fn $a]=$b
			;;
		esac
	done <"$work/count$i.rep"
done
if [ $fails -ne 0 ]; then
	echo "fault: $fails failures"
	exit 1
fi

# ------------------------------------------------------------ 2. inject
# The plan, most telling first, one "ID MODE FN N SITE" a line: every
# site's first call; pthread_create failing for a while (at the pool's
# start, at its next threads, and late: a worker added for work, the
# timer, ss-diag); every site's next calls and its last seen; then the
# N-th call of each function for N in 1..K (under a sanitizer every
# stride-th, the first three and the last).  Past the time budget no run
# starts; the table says how many were left.
plan=$work/plan
: >"$plan"
for fn in $fns; do
	for s in ${SITES[$fn]:-}; do
		echo "site-$fn-$s-1 site $fn 1 $s" >>"$plan"
	done
done
k=${K[pthread_create]:-0}
for n in $(printf '%s\n' 1 2 3 4 5 6 $((k / 2)) $k | sort -nu); do
	[ $n -ge 1 ] && [ $n -le $k ] &&
		echo "persist-pthread_create-$n persist pthread_create $n -" >>"$plan"
done
# Memory short for a while, from the middle of the run on.
for fn in malloc calloc mmap posix_memalign; do
	k=${K[$fn]:-0}
	[ $k -ge 2 ] && echo "persist-$fn-$((k / 2)) persist $fn $((k / 2)) -" >>"$plan"
done
for fn in $fns; do
	for s in ${SITES[$fn]:-}; do
		m=${SITEN[$fn $s]}
		for ((n = 2; n <= m; n++)); do
			[ $n -le $site_calls ] || [ $n -eq $m ] || continue
			echo "site-$fn-$s-$n site $fn $n $s" >>"$plan"
		done
	done
done
for fn in $fns; do
	k=${K[$fn]:-0}
	for ((n = 1; n <= k; n++)); do
		if [ $n -gt 3 ] && [ $n -ne $k ] && [ $(((n - 1) % stride)) -ne 0 ]; then
			continue
		fi
		echo "nth-$fn-$n nth $fn $n -" >>"$plan"
	done
done
(cd "$work" && awk '{ print $1 ".d" }' plan | xargs mkdir)
ncase=0 skipped=0
while read -r id mode fn n site; do
	if [ "$budget" -gt 0 ] && [ $((SECONDS - start)) -ge "$budget" ]; then
		skipped=$((skipped + 1))
		continue
	fi
	[ "$site" = - ] && site=
	throttle
	ncase=$((ncase + 1))
	# (stderr: the shell's own "Segmentation fault" lines)
	run_case "$id" "$mode" "$fn" "$n" "$site" 2>/dev/null &
done <"$plan"
wait

# ------------------------------------------------------------ 3. report
cat "$work"/*.res | grep -v '^count' >"$work/all"
printf '%-15s %5s %5s %5s %8s %6s %7s %6s %5s %8s %9s %5s %9s\n' \
	function calls sites runs injected unhit crashes hangs lost contract sanitizer other sites-hit
for fn in $fns; do
	awk -v fn="$fn" -v k="${K[$fn]:-0}" -v nsites="$(echo ${SITES[$fn]:-} | wc -w)" '
	$3 == fn {
		runs++
		if ($8 > 0) { inj++; hit[$9] = 1 } else unhit++
		if ($7 == "crash") crash++
		else if ($7 == "hang") hang++
		else if ($7 == "lost") lost++
		else if ($7 == "contract") con++
		else if ($7 == "sanitizer") sanit++
		else if ($7 == "exit") other++
	}
	END {
		nh = 0
		for (s in hit) nh++
		printf "%-15s %5d %5d %5d %8d %6d %7d %6d %5d %8d %9d %5d %5d/%-3d\n",
			fn, k, nsites, runs, inj, unhit, crash, hang, lost, con, sanit, other, nh, nsites
	}' "$work/all"
done
# Sites seen while counting that no run made fail.
for fn in $fns; do
	for s in ${SITES[$fn]:-}; do
		if ! awk -v fn="$fn" -v s="$s" '$3 == fn && $8 > 0 && $9 == s { f = 1 } END { exit !f }' "$work/all"; then
			echo "note: $fn at $s ($(sym "$s")) never failed (not reached in its runs)"
		fi
	done
done

# Details of each failed run; the stacks of the first few from gdb.
gdb_budget=6
[ -z "$san" ] && command -v gdb >/dev/null 2>&1 || gdb_budget=0
stacks() { # ID MODE FN N SITE CLASS
	local id=$1 mode=$2 fn=$3 n=$4 site=$5 class=$6 pid i
	local handle=(-ex 'set pagination off' -ex 'handle SIGURG nostop noprint pass'
		-ex 'handle SIGUSR2 nostop noprint pass' -ex 'handle SIGPIPE nostop noprint pass')
	[ "$site" = - ] && site=
	if [ "$class" = hang ]; then
		FI_MODE=$mode FI_FN=$fn FI_N=$n FI_SITE=$site FI_PERSIST_MS=$persist_ms \
			FI_REPORT=/dev/null "$prog" >/dev/null 2>&1 &
		pid=$!
		for ((i = 0; i < limit * 10; i++)); do
			kill -0 $pid 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 $pid 2>/dev/null; then
			echo "  | gdb, attached to the hung run:"
			timeout 60 gdb -p $pid -batch "${handle[@]}" -ex 'thread apply all bt' 2>&1 |
				grep -E '^(Thread|#)' | sed 's/^/  | /' | head -150
			kill -KILL $pid 2>/dev/null
			wait $pid 2>/dev/null
		else
			wait $pid
			echo "  | (the run under gdb's watch did not hang: exit $?)"
		fi
	elif core=$(ls "$work/$id.d"/core* 2>/dev/null | head -1) && [ -n "$core" ]; then
		echo "  | gdb, the core it left:"
		timeout 60 gdb -batch "${handle[@]}" -ex bt -ex 'thread apply all bt' "$prog" "$core" 2>&1 |
			grep -E '^(Thread|#|Program)' | sed 's/^/  | /' | head -150
	else
		echo "  | gdb, run again:"
		FI_MODE=$mode FI_FN=$fn FI_N=$n FI_SITE=$site FI_PERSIST_MS=$persist_ms \
			FI_REPORT=/dev/null timeout 120 gdb -batch "${handle[@]}" -ex run \
			-ex 'thread apply all bt' "$prog" 2>&1 |
			grep -E '^(Thread|#|Program|\[Inferior)' | sed 's/^/  | /' | head -150
	fi
}
while read -r id mode fn n site rc class fired injsite dur; do
	[ "$class" = ok ] && continue
	what="$mode $fn N=$n"
	[ "$site" != - ] && what="$what site $site"
	fail "$what: $class (exit $rc)"
	if [ "$injsite" != - ]; then
		echo "  injected at $injsite: $(sym "$injsite") ($(awk '$1 == "inject" { print "call " $4 " of the function, " $5 " of the site, thread " $6; exit }' "$work/$id.rep"))"
		awk '$1 == "frame" { print $2 }' "$work/$id.rep" | while read -r f; do
			case "$f" in
			exe+*) echo "    $(sym "$((${f#exe+}))")" ;;
			*) echo "    $f" ;;
			esac
		done
	else
		echo "  (no failure was injected)"
	fi
	grep -E '^(lost|doubled|ghost|contract)' "$work/$id.rep" | head -10 | sed 's/^/  | /'
	grep -v '^fault: slot' "$work/$id.err" | tail -30 | sed 's/^/  | /'
	if [ $gdb_budget -gt 0 ] && { [ "$class" = crash ] || [ "$class" = hang ]; }; then
		gdb_budget=$((gdb_budget - 1))
		stacks "$id" "$mode" "$fn" "$n" "$site" "$class"
	fi
done < <(sort -k1,1 "$work/all")

awk '{ print $10 }' "$work/all" | sort -n | awk '{ d[NR] = $1 } END {
	if (NR) printf "fault: a run took %d ms (median), %d ms at most\n", d[int((NR + 1) / 2)], d[NR] }'
[ $skipped -eq 0 ] ||
	echo "note: $skipped planned runs left out: past the time budget of $budget s (FI_BUDGET_S=0: no budget)"
echo "fault: $ncase runs with a failure injected, $fails failed, $((SECONDS - start)) s${san:+ ($san)}"
[ $fails -eq 0 ]
