#!/usr/bin/env bash
# tests/stress/run.sh - the short mode of the stress driver (stress.c) in
# `make check`, in every build (normal, ASan+UBSan, TSan): one run with a
# fixed seed and one with a random seed (printed), each about 10 s (less
# in a sanitizer build; the driver scales itself).  A run fails on a
# nonzero exit, on any sanitizer report in its stderr, or on a hang (the
# driver's own watchdog, and a timeout around it as the backstop).
#
# Environment (tests/Makefile.am): SS_TEST_HELPER_DIR (where stress/stress
# is), SS_SANITIZER_BUILD.  SS_STRESS_SEED replaces the random seed (to
# repeat a failed run); SS_STRESS_ARGS adds arguments to both runs (say
# "--threads 8").  The caller's SMOLSCALE_* settings pass through, so
# SMOLSCALE_STEAL=1 stresses the work-stealing policy.
# Exit: 1 on any failure, else 0.
set -u
export LC_ALL=C
unset LD_PRELOAD

dir=${SS_TEST_HELPER_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
bin=$dir/stress/stress
san=${SS_SANITIZER_BUILD:-}
if [ ! -x "$bin" ]; then
	echo "FAIL: the stress driver $bin was not built"
	exit 1
fi

# Sanitizer defaults where the caller set none (scripts/check sets them).
if [ -n "$san" ]; then
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
	export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1 second_deadlock_stack=1}
	limit=480
else
	limit=300
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ss-stress.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT

reports='ERROR: AddressSanitizer|ERROR: LeakSanitizer|WARNING: ThreadSanitizer|runtime error:|UndefinedBehaviorSanitizer'
fails=0

# run NAME ARGS...: one run of the driver.
run() {
	local name=$1 rc seed
	shift
	timeout -k 10 "$limit" "$bin" "$@" ${SS_STRESS_ARGS:-} \
		>"$work/out" 2>"$work/err"
	rc=$?
	cat "$work/out"
	seed=$(sed -n 's/^stress: seed=\([0-9]*\).*/\1/p' "$work/out" | head -n 1)
	if [ "$rc" -ne 0 ] || grep -Eq "$reports" "$work/err" ||
	   ! grep -q '^stress: seed=.* ok$' "$work/out"; then
		if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
			echo "FAIL: $name: no result after $limit s (killed)"
		elif grep -Eq "$reports" "$work/err"; then
			echo "FAIL: $name: sanitizer report (exit $rc)"
		else
			echo "FAIL: $name: exit $rc"
		fi
		echo "---- stderr"
		head -c 200000 "$work/err"
		echo "----"
		echo "repeat with: $bin --seed ${seed:-?} ${SS_STRESS_ARGS:-}"
		fails=$((fails + 1))
	else
		# A clean run writes nothing to stderr; show what it did write.
		if [ -s "$work/err" ]; then
			echo "---- stderr (no report)"
			head -c 20000 "$work/err"
		fi
		echo "PASS: $name"
	fi
}

echo "stress driver: $bin${san:+ (SANITIZE=$san)}"
run "fixed seed" --seed 24601
if [ -n "${SS_STRESS_SEED:-}" ]; then
	run "seed $SS_STRESS_SEED" --seed "$SS_STRESS_SEED"
else
	run "random seed"
fi

[ "$fails" -eq 0 ] || exit 1
exit 0
