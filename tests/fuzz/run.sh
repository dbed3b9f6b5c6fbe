#!/usr/bin/env bash
# tests/fuzz/run.sh - run each libFuzzer target (tests/fuzz/local.mk) for
# SS_FUZZ_SECONDS seconds (default 10), one after the other, one process
# each, from its seeds (fuzz/corpus/NAME) and the corpus it grew before
# (fuzz/work/NAME), with its dictionary (fuzz/NAME.dict).
#
# Environment (tests/Makefile.am): SS_TEST_HELPER_DIR (the fuzzers are in
# its fuzz/), SS_SRCDIR.  Optional: SS_FUZZ_SECONDS; SS_FUZZ_TARGETS, a
# list among "env poolspec args" (default all); SS_FUZZ_TIMEOUT, seconds
# one input may take before it counts as a finding (default 25).
#
# Any finding fails: a crash, a failed check of the target, a leak, an
# AddressSanitizer or UBSan report, an input slower than SS_FUZZ_TIMEOUT,
# or more than 2 GiB of memory.  The input is left in
# fuzz/work/NAME-crash-* (or -leak-, -timeout-, -oom-); replay it with
# fuzz/fuzz_NAME FILE.  A fixed crash belongs in fuzz/corpus/NAME/ as a
# regression.
# Exit: 77 (skip) when the fuzzers were not built (configure found no
# clang with a fuzzer runtime), 1 on a finding, else 0.
set -u
export LC_ALL=C

. "$(dirname "$0")/../lib.sh"
require_env SS_TEST_HELPER_DIR SS_SRCDIR
bin=$SS_TEST_HELPER_DIR/fuzz
src=$SS_SRCDIR/fuzz
secs=${SS_FUZZ_SECONDS:-10}
limit=${SS_FUZZ_TIMEOUT:-25}
targets=${SS_FUZZ_TARGETS:-env poolspec args}

if ! [[ $secs =~ ^[1-9][0-9]*$ ]] || ! [[ $limit =~ ^[1-9][0-9]*$ ]]; then
	echo "FAIL: SS_FUZZ_SECONDS ($secs) and SS_FUZZ_TIMEOUT ($limit) must be whole numbers of seconds"
	exit 1
fi
for t in $targets; do
	case $t in
	env|poolspec|args) ;;
	*) echo "FAIL: SS_FUZZ_TARGETS: unknown target '$t' (want env, poolspec, args)"; exit 1 ;;
	esac
	if [ ! -x "$bin/fuzz_$t" ]; then
		echo "SKIP: $bin/fuzz_$t was not built: configure found no clang whose"
		echo "      -fsanitize=fuzzer,address,undefined links and runs (clang, and"
		echo "      libclang_rt.fuzzer: Debian's libclang-common-NN-dev)"
		exit 77
	fi
done

work=$bin/work
mkdir -p "$work" || exit 1
# Stop at the first report, with a stack; libFuzzer's own leak check
# (-detect_leaks, on by default) needs LeakSanitizer on.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}abort_on_error=0:detect_leaks=1:allocator_may_return_null=0
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1

fails=0
for t in $targets; do
	corpus=$work/$t
	log=$work/$t.log
	mkdir -p "$corpus" || exit 1
	rm -f "$work/$t"-crash-* "$work/$t"-leak-* "$work/$t"-timeout-* \
		"$work/$t"-oom-* "$work/$t"-slow-unit-*
	# One process (no -jobs/-workers: libFuzzer's in-process default).
	# -error_exitcode: libFuzzer's default, 77, would read as a skip.
	"$bin/fuzz_$t" \
		-max_total_time="$secs" -timeout="$limit" -rss_limit_mb=2048 \
		-error_exitcode=1 -timeout_exitcode=1 \
		-dict="$src/$t.dict" -artifact_prefix="$work/$t-" \
		-print_final_stats=1 \
		"$corpus" "$src/corpus/$t" >"$log" 2>&1
	rc=$?
	done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) corp: \([^ ]*\).*/cov \1, ft \2, corpus \3/p' \
		<<<"$done_line")
	if [ "$rc" -ne 0 ] || grep -qE 'runtime error:|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' "$log"; then
		fails=$((fails + 1))
		echo "FAIL: fuzz_$t (exit $rc) after ${execs:-?} inputs; the report ($log):"
		first=$(grep -n -m 1 -E 'ERROR:|runtime error:|check failed' "$log" | cut -d: -f1)
		if [ -n "$first" ]; then
			sed -n "${first},$((first + 30))p" "$log"
		else
			tail -n 40 "$log"
		fi | sed 's/^/  | /'
		for a in "$work/$t"-crash-* "$work/$t"-leak-* "$work/$t"-timeout-* "$work/$t"-oom-*; do
			[ -e "$a" ] && echo "  input: $a (replay: $bin/fuzz_$t $a)"
		done
	else
		echo "PASS: fuzz_$t: ${secs}s, ${execs:-?} inputs (${rate:-?}/s), ${cov:-no coverage line}"
	fi
done
[ "$fails" -eq 0 ] || exit 1
exit 0
