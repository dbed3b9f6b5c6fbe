#!/usr/bin/env bash
# tests/cli/run.sh - tests of the smolscale command (preload/smolscale.c):
# --help and --version, usage errors, finding the library, `run` and
# `ab` (table, exit and stdout checks, --plot).  No timed assertions, and
# nothing depends on the library rerouting threads: without --pthread it
# must change nothing, and the cases with --pthread run programs that
# start no threads.
#
# Environment (tests/Makefile.am): SS_SMOLSCALE, SS_PRELOAD,
# SS_TEST_HELPER_DIR, SS_SANITIZER_BUILD.  In a sanitizer build the
# sanitized library cannot be preloaded into other programs, so the
# library is stood in for by libc (SMOLSCALE_PRELOAD) and the cases that
# need the real one, or that preload into a sanitized program, are
# skipped.  SS_CLI_KEEP=1 keeps the work directory.
# Exit: 1 on any failure, else 0.
set -u
export LC_ALL=C

. "$(dirname "$0")/../lib.sh"
require_env SS_SMOLSCALE SS_PRELOAD SS_TEST_HELPER_DIR
ss=$SS_SMOLSCALE
if [ ! -x "$ss" ]; then
	echo "FAIL: the smolscale command $ss was not built"
	exit 1
fi
helper=$SS_TEST_HELPER_DIR/cli/threads
san=${SS_SANITIZER_BUILD:-}

# Nothing of the caller's smolscale settings leaks into the runs.
unset LD_PRELOAD
for v in $(compgen -e | grep '^SMOLSCALE_'); do
	unset "$v"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ss-cli.XXXXXX") || exit 1
if [ "${SS_CLI_KEEP:-0}" = 1 ]; then
	echo "work directory: $work"
else
	trap 'rm -rf "$work"' EXIT
fi

if [ -n "$san" ]; then
	lib=$(ldd "$(command -v printenv)" | awk '$1 ~ /^libc\.so/ { print $3 }')
	lib=$(realpath "$lib")
	export SMOLSCALE_PRELOAD=$lib
	echo "note: sanitizer build (SANITIZE=$san): libc ($lib) stands in for the library"
else
	lib=$(realpath "$SS_PRELOAD")
fi
if [ ! -f "$lib" ]; then
	echo "FAIL: the preload library $lib was not built"
	exit 1
fi

fails=0 passes=0 skips=0
# t CMD...: run CMD; its stdout in $out, stderr in $err, status in $rc.
out=$work/out err=$work/err rc=0
t() {
	"$@" >"$out" 2>"$err"
	rc=$?
}
show() {
	echo "  status $rc; stdout:"
	sed -n '1,40s/^/    /p' "$out"
	echo "  stderr:"
	sed -n '1,20s/^/    /p' "$err"
}
# check NAME TEST...: one assertion on the last t.
check() {
	local name=$1
	shift
	if "$@"; then
		passes=$((passes + 1))
	else
		fails=$((fails + 1))
		echo "FAIL: $name"
		show
	fi
}
skip() {
	skips=$((skips + 1))
	echo "SKIP: $*"
}
status_is() { [ "$rc" = "$1" ]; }
out_has() { grep -Eq -- "$1" "$out"; }
err_has() { grep -Eq -- "$1" "$err"; }
out_lacks() { ! grep -Eq -- "$1" "$out"; }
out_is() { [ "$(cat "$out")" = "$1" ]; }
err_lines() { [ "$(wc -l <"$err")" = "$1" ]; }

# usage NAME PATTERN ARGS...: a usage error, status 2 and one line
# matching PATTERN (the bad argument) on stderr, nothing on stdout.
usage() {
	local name=$1 pattern=$2
	shift 2
	t "$ss" "$@"
	check "$name: status 2" status_is 2
	check "$name: one line on stderr naming it" err_lines 1
	check "$name: the message" err_has "^smolscale: .*$pattern"
	check "$name: nothing on stdout" test ! -s "$out"
}

# -- help and version --------------------------------------------------------
for h in --help -h "run --help" "ab --help" "ab -n 3 --help"; do
	t "$ss" $h
	check "$h: status 0" status_is 0
	check "$h: usage" out_has '^Usage: smolscale run '
	check "$h: ab" out_has '^ +smolscale ab '
	check "$h: mentions ptrace" out_has 'ptrace'
done
t "$ss" --version
check "--version: status 0" status_is 0
check "--version: the version" out_has '^smolscale [0-9]+\.[0-9]+'

# -- usage errors ------------------------------------------------------------
usage "no arguments" "no command"
usage "unknown command" "'frobnicate'" frobnicate
usage "empty command" "''" ""
usage "option before the command" "'--pthread'" --pthread run true
usage "run without a command" "no command" run
usage "ab without a command" "no command" ab
usage "run -- without a command" "no command" run --
usage "ab options, no command" "no command" ab -n 3 --pthread
usage "unknown run option" "'--bogus'" run --bogus true
usage "unknown ab option" "'--bogus'" ab --bogus true
usage "ab option given to run" "'-n'" run -n 3 true
usage "ab option given to run (--plot)" "'--plot'" run --plot x.svg true
usage "-n 0" "'0'" ab -n 0 true
usage "-n 1001" "'1001'" ab -n 1001 true
usage "-n not a number" "'abc'" ab -n abc true
usage "-n negative" "'-1'" ab -n -1 true
usage "-n with a sign" "'\\+3'" ab -n +3 true
usage "-n huge" "'99999999999999999999999'" ab -n 99999999999999999999999 true
usage "-n with spaces" "' 3'" ab -n " 3" true
usage "-n without a value" "'-n' needs a value" ab -n
usage "--runs=" "''" ab --runs= true
usage "--warmup 101" "'101'" ab --warmup 101 true
usage "--warmup x" "'x'" ab --warmup=x true
usage "--threads 0" "'0'" run --threads 0 true
usage "--threads 4097" "'4097'" ab --threads 4097 true
usage "--threads 1.5" "'1.5'" run --threads=1.5 true
usage "--threads without a value" "'--threads' needs a value" run --threads
usage "--plot .pdf" "'out.pdf'" ab --plot out.pdf true
usage "--plot no name" "'.svg'" ab --plot .svg true
usage "--plot without a value" "'--plot' needs a value" ab --plot
usage "--threadsX" "'--threadsX'" run --threadsX 3 true

# Odd argv never crashes (a status from a signal would be >= 128).
long=$(head -c 100000 /dev/zero | tr '\0' x)
for args in "-" "--" "---" "-n" "run -" "ab --=" "run --threads=" "ab -n=" "ab -n5x true" \
	"run --pthread --pthread -- --" "$long" "run --$long" "ab -n $long true" \
	"ab --plot $long.svg" "$(printf 'run --\377\376')" "ab -n 1 --warmup 0 --no-count -- $long"; do
	t "$ss" $args
	check "odd argv (${args:0:40}): no crash" test "$rc" -lt 128
	check "odd argv (${args:0:40}): says something" test -s "$err" -o -s "$out"
done

# -- finding the library -----------------------------------------------------
SMOLSCALE_PRELOAD=/nonexistent/libx.so t "$ss" run true
check "missing SMOLSCALE_PRELOAD: status 125" status_is 125
check "missing SMOLSCALE_PRELOAD: names it" err_has "/nonexistent/libx.so.*SMOLSCALE_PRELOAD"
check "missing SMOLSCALE_PRELOAD: one line" err_lines 1
SMOLSCALE_PRELOAD=/nonexistent t "$ss" ab -n 1 true
check "ab, missing SMOLSCALE_PRELOAD: status 125" status_is 125
check "ab, missing SMOLSCALE_PRELOAD: names it" err_has "'/nonexistent'"
SMOLSCALE_PRELOAD=/ t "$ss" run true
check "SMOLSCALE_PRELOAD a directory: status 125" status_is 125
mkdir "$work/bin"
cp "$ss" "$work/bin/smolscale"
env -u SMOLSCALE_PRELOAD "$work/bin/smolscale" run true >"$out" 2>"$err"
rc=$?
if [ "$rc" = 0 ]; then
	skip "a copy of smolscale outside the build tree found an installed library"
else
	check "no library: status 125" status_is 125
	check "no library: names the build tree's path" \
		err_has "tried $work/bin/\\.libs/libsmolscale-preload\\.so and .*libsmolscale-preload\\.so"
	check "no library: one line" err_lines 1
fi
mkdir "$work/bin/.libs"
cp "$lib" "$work/bin/.libs/libsmolscale-preload.so"
env -u SMOLSCALE_PRELOAD "$work/bin/smolscale" run printenv LD_PRELOAD >"$out" 2>"$err"
rc=$?
check "the library next to the program: found" out_is "$work/bin/.libs/libsmolscale-preload.so"
ln -s "$lib" "$work/lib link.so"
SMOLSCALE_PRELOAD="$work/lib link.so" t "$ss" run printenv LD_PRELOAD
check "SMOLSCALE_PRELOAD through a symlink with a space: resolved" out_is "$lib"
if [ -z "$san" ]; then
	t "$ss" run printenv LD_PRELOAD
	check "the build tree's library by default" out_is "$lib"
fi
(cd "$work" && SMOLSCALE_PRELOAD="./lib link.so" "$ss" run printenv LD_PRELOAD) >"$out" 2>"$err"
rc=$?
check "a relative SMOLSCALE_PRELOAD is made absolute" out_is "$lib"

# -- run ---------------------------------------------------------------------
t "$ss" run -- sh -c 'echo hello; echo to-stderr >&2; exit 7'
check "run: exit status passed through" status_is 7
check "run: stdout passed through" out_is hello
check "run: stderr passed through" err_has '^to-stderr$'
t "$ss" run printf '%s|' a 'b c' '' --pthread -n
check "run: arguments as given, options after the command kept" out_is "a|b c||--pthread|-n|"
t "$ss" run -- --pthread
check "run: a command after -- that looks like an option" status_is 127
t "$ss" run sh -c 'kill -PIPE $$'
check "run: a signal passed through" status_is $((128 + 13))
t "$ss" run --pthread --threads 3 -- printenv LD_PRELOAD SMOLSCALE_PTHREAD SMOLSCALE_THREADS
check "run --pthread --threads 3: status 0" status_is 0
check "run --pthread --threads 3: the environment" out_is "$(printf '%s\n1\n3' "$lib")"
t "$ss" run --threads=2 printenv SMOLSCALE_THREADS
check "run --threads=2" out_is 2
t "$ss" run -- printenv SMOLSCALE_PTHREAD
check "run without --pthread: SMOLSCALE_PTHREAD not set" status_is 1
SMOLSCALE_PTHREAD=0 t "$ss" run -- printenv SMOLSCALE_PTHREAD
check "run without --pthread: the caller's SMOLSCALE_PTHREAD kept" out_is 0
t "$ss" run --no-gthreadpool -- printenv SMOLSCALE_GTHREADPOOL
check "run --no-gthreadpool: SMOLSCALE_GTHREADPOOL=0" out_is 0
t "$ss" run -- printenv SMOLSCALE_GTHREADPOOL
check "run without --no-gthreadpool: SMOLSCALE_GTHREADPOOL not set" status_is 1
libc=$(ldd "$(command -v printenv)" | awk '$1 ~ /^libc\.so/ { print $3 }')
if [ -z "$san" ]; then
	# (A preload into the sanitized smolscale itself would stop it.)
	t env LD_PRELOAD="$lib" "$ss" run -- printenv LD_PRELOAD
	check "run: prepends to LD_PRELOAD" out_is "$lib:$lib"
	t env LD_PRELOAD="$libc  $libc" "$ss" run -- printenv LD_PRELOAD
	check "run: prepends to a space-separated LD_PRELOAD" out_is "$lib:$libc  $libc"
fi
t "$ss" run -- /nonexistent/command
check "run: command not found: 127" status_is 127
check "run: command not found: says so" err_has "^smolscale: cannot run '/nonexistent/command': No such file"
printf 'echo hi\n' >"$work/noexec"
t "$ss" run -- "$work/noexec"
check "run: command not executable: 126" status_is 126
check "run: command not executable: says so" err_has "Permission denied"
t "$ss" run -- nonexistent-command-for-smolscale
check "run: command not on PATH: 127" status_is 127

# -- ab ----------------------------------------------------------------------
rows=("wall s" "user s" "sys s" "cpu s \\(user\\+sys\\)" "peak RSS MiB" "voluntary ctx sw"
	"involuntary ctx sw" "threads created" "processes created")
t "$ss" ab -n 2 --warmup 0 -- printf 'one\ntwo\n'
check "ab: status 0" status_is 0
check "ab: the command" out_has "^smolscale ab: printf 'one\\\\ntwo\\\\n'$"
check "ab: runs and warm-ups" out_has "^median and min-max of 2 timed runs per side after 0 warm-ups"
check "ab: the side with the library" out_has "^with: LD_PRELOAD=$lib$"
check "ab: the header" out_has "without +min-max +with +min-max +with/without$"
for r in "${rows[@]}"; do
	check "ab: row $r" out_has "^$r +([0-9.]+ +[0-9.]+-[0-9.]+|[0-9]+ +\\(1 counting run\\)|- +not counted) +([0-9.]+|-) +([0-9.]+-[0-9.]+|\\(1 counting run\\)|not counted) +([0-9.]+|-)$"
done
check "ab: same exit" out_has '^exit: the same on every run of both sides: exit status 0$'
check "ab: same stdout" out_has '^stdout: identical on every run of both sides \(8 bytes, compared byte by byte\)$'
check "ab: stdout of the command not shown" out_lacks '^one$'
check "ab: nothing on stderr" test ! -s "$err"
if out_has '^threads: not counted'; then
	skip "ptrace is not allowed here: $(grep '^threads:' "$out")"
	ptrace=0
else
	check "ab: no threads for printf" out_has '^threads created +0 +\(1 counting run\) +0 '
	check "ab: no processes for printf" out_has '^processes created +0 +\(1 counting run\) +0 '
	ptrace=1
fi

t "$ss" ab -n 1 --warmup 0 --no-count -- printf "it's %s" '' "a b" $(seq 1000)
check "ab: the command line quoted as for a shell, cut short" \
	out_has "^smolscale ab: printf 'it'\\\\''s %s' '' 'a b' 1 2 3 .* [0-9]+ \\.\\.\\. \\([0-9]+ more\\)$"

t "$ss" ab -n 1 --warmup 0 --no-count -- true
check "ab --no-count: status 0" status_is 0
check "ab --no-count: threads not counted" out_has '^threads created +- +not counted +- +not counted +-$'

t "$ss" ab --runs=3 --warmup=2 -- true
check "ab --runs=3 --warmup=2" out_has '^median and min-max of 3 timed runs per side after 2 warm-ups'

if [ "$ptrace" = 1 ]; then
	t "$ss" ab -n 1 --warmup 0 -- sh -c 'true & wait; (exit 0); :'
	check "ab: processes of the tree counted" \
		out_has '^processes created +([1-9][0-9]*) +\(1 counting run\) +\1 '
	t "$ss" ab -n 1 --warmup 0 -- sh -c 'sleep 0.2 & exit 0'
	check "ab: a process outliving the command does not hold ab up" status_is 0
	if [ -z "$san" ]; then
		t "$ss" ab -n 1 --warmup 0 -- "$helper" 5
		check "ab on the threads helper: status 0" status_is 0
		check "ab: threads of the helper counted, the library changes nothing" \
			out_has '^threads created +5 +\(1 counting run\) +5 +\(1 counting run\) +1\.00$'
	fi
fi

t "$ss" ab -n 2 --warmup 0 --pthread -- sh -c 'echo $SMOLSCALE_PTHREAD'
check "ab, stdout differs: status 1" status_is 1
check "ab, stdout differs: says so" \
	out_has '^stdout: DIFFERS: 0 of 2 runs without and 2 of 2 with differ from the first run \(1 byte\); first at byte 0 of run 1 with \(2 bytes\)$'
check "ab, stdout differs: on stderr" err_has '^smolscale: ab: the runs differ'
check "ab, stdout differs: same exit" out_has '^exit: the same on every run of both sides: exit status 0$'

t "$ss" ab -n 1 --warmup 1 --threads 3 -- sh -c 'exit ${SMOLSCALE_THREADS:-0}'
check "ab, exit differs: status 1" status_is 1
check "ab, exit differs: says so" \
	out_has '^exit: DIFFERS: without: exit status 0 \(2 runs\); with: exit status 3 \(2 runs\)$'
check "ab --threads 3: in the header" out_has "^with: LD_PRELOAD=$lib SMOLSCALE_THREADS=3$"

t "$ss" ab -n 2 --warmup 0 -- sh -c 'echo out; echo err >&2; exit 3'
check "ab, command fails: status 1" status_is 1
check "ab, command fails: says so" out_has '^exit: the same on every run of both sides: exit status 3 \(the command failed\)$'
check "ab, command fails: on stderr" err_has '^smolscale: ab: the command failed on every run$'
check "ab, command fails: the table all the same" out_has '^wall s '
check "ab: stderr of the command passes through" test "$(grep -c '^err$' "$err")" -ge 4

t "$ss" ab -n 1 --warmup 0 --no-count -- sh -c 'kill -TERM $$'
check "ab, command killed: status 1" status_is 1
check "ab, command killed: says so" out_has '^exit: the same on every run of both sides: killed by SIGTERM \(the command failed\)$'

t "$ss" ab -n 1 --warmup 0 --no-count -- sh -c 'test -n "$LD_PRELOAD" && kill -SEGV $$; exit 0'
check "ab, crash with the library: status 1" status_is 1
check "ab, crash with the library: says so" \
	out_has '^exit: DIFFERS: without: exit status 0 \(1 run\); with: killed by SIGSEGV \(1 run\)$'

echo "from stdin" | t "$ss" ab -n 1 --warmup 0 --no-count -- cat
check "ab: stdin is /dev/null" out_has '^stdout: identical on every run of both sides \(0 bytes'

t "$ss" ab -n 1 --warmup 0 -- /nonexistent/command
check "ab: command not found: 127" status_is 127
check "ab: command not found: says so" err_has "^smolscale: cannot run '/nonexistent/command': No such file"
check "ab: command not found: no table" test ! -s "$out"
t "$ss" ab -n 1 --warmup 0 -- "$work/noexec"
check "ab: command not executable: 126" status_is 126

if [ -z "$san" ]; then
	# The side without runs without the library even when the caller
	# preloads it (smolscale ab under smolscale run).
	t "$ss" run -- "$ss" ab -n 1 --warmup 0 --no-count -- sh -c 'test -z "$LD_PRELOAD"'
	check "ab under run: the side without drops the library" \
		out_has '^exit: DIFFERS: without: exit status 0 \(1 run\); with: exit status 1 \(1 run\)$'
	t env LD_PRELOAD="$libc" "$ss" ab -n 1 --warmup 0 --no-count -- printenv LD_PRELOAD
	check "ab: the side with prepends to LD_PRELOAD" status_is 1
	check "ab: the header shows the side with's LD_PRELOAD" out_has "^with: LD_PRELOAD=$lib:$libc$"
	check "ab: the caller's preloads kept on both sides" out_has \
		"^stdout: DIFFERS: .*\\($((${#libc} + 1)) bytes\\); first at byte 1 of run 1 with \\($((${#lib} + ${#libc} + 2)) bytes\\)$"
fi

# -- ab --plot ---------------------------------------------------------------
if command -v gnuplot >/dev/null; then
	t "$ss" ab -n 2 --warmup 0 --plot "$work/ab.svg" -- printf x
	check "ab --plot svg: status 0" status_is 0
	check "ab --plot svg: says where" out_has "^plot: $work/ab.svg$"
	check "ab --plot svg: a non-empty SVG" grep -q '<svg' "$work/ab.svg"
	check "ab --plot svg: no gnuplot warnings" test ! -s "$err"
	t "$ss" ab -n 1 --warmup 0 --no-count --plot "$work/ab.PNG" -- printf x
	check "ab --plot png: status 0" status_is 0
	check "ab --plot png: a PNG" test "$(head -c 4 "$work/ab.PNG" | tail -c 3)" = PNG
	t "$ss" ab -n 1 --warmup 0 --no-count --plot "$work/no/such/dir/ab.svg" -- true
	check "ab --plot into a missing folder: the table all the same" out_has '^wall s '
	check "ab --plot into a missing folder: says so" err_has 'no plot written'
	check "ab --plot into a missing folder: the status of the comparison" status_is 0
	odd="it's \"q\" \`touch pwned\` \$(touch pwned).svg"
	(cd "$work" && "$ss" ab -n 1 --warmup 0 --no-count --plot "$odd" -- true) >"$out" 2>"$err"
	rc=$?
	check "ab --plot with quotes in the name: written" test -s "$work/$odd"
	check "ab --plot with quotes in the name: nothing run" test ! -e "$work/pwned"
else
	skip "gnuplot is not installed: --plot not tested"
fi

# -- stats -------------------------------------------------------------------
usage "stats without a PID" "no PID" stats
usage "stats with a bad PID" "bad value '0x' for PID" stats 0x
usage "stats with two PIDs" "unexpected argument '2'" stats 1 2
usage "stats with a bad timeout" "bad value '0' for --timeout" stats --timeout 0 1
t "$ss" stats --help
check "stats --help: status 0" status_is 0
check "stats --help: the usage" out_has '^ +smolscale stats \[--timeout MS\] PID'
sleep 30 </dev/null >/dev/null 2>&1 &
plain=$!
t "$ss" stats "$plain"
check "stats of a process without smolscale: status 1" status_is 1
check "stats of a process without smolscale: says so" err_has "^smolscale: process $plain has no smolscale stats"
kill "$plain" 2>/dev/null
wait "$plain" 2>/dev/null
t "$ss" stats 4194304
check "stats of no process: status 1" status_is 1
check "stats of no process: says so" err_has "^smolscale: process 4194304 does not exist"
if [ -n "$san" ]; then
	skip "sanitizer build: stats of a live process needs the real library"
else
	# The stats signal is the library's from the start: before any pool,
	# a signal that would end the process is caught.
	t "$ss" run -- env SMOLSCALE_STATS_SIGNAL=USR2 sh -c 'kill -USR2 $$; echo alive'
	check "SMOLSCALE_STATS_SIGNAL before the pool starts: not fatal" out_is alive
	t "$ss" run -- sh -c 'trap "" USR2; SMOLSCALE_STATS_SIGNAL=USR2 sh -c "kill -USR2 \$\$; echo ignored"'
	check "SMOLSCALE_STATS_SIGNAL: an ignored signal stays ignored" out_is ignored
	# A live process under the library: 20 rerouted threads, then it
	# waits for its stdin (a FIFO held open here) to end.
	fifo=$work/stdin
	mkfifo "$fifo"
	SMOLSCALE_STATS_SIGNAL=USR2 "$ss" run --pthread -- "$helper" 20 wait \
		<"$fifo" >"$work/live.out" 2>"$work/live.err" &
	live=$!
	exec 9>"$fifo"
	for _ in $(seq 1 200); do
		grep -q '^threads 20 ' "$work/live.out" && break
		sleep 0.05
	done
	t "$ss" stats "$live"
	check "stats PID: status 0" status_is 0
	check "stats PID: the counters" out_has '^smolscale: stats threads=[0-9]+ active_workers='
	check "stats PID: the 20 rerouted threads" out_has ' pthreads_rerouted=20( |$)'
	check "stats PID: their tasks" out_has ' tasks_completed=20( |$)'
	check "stats PID: nothing on stderr" test ! -s "$err"
	nthreads=$(sed -n 's/^smolscale: stats threads=\([0-9]*\) .*/\1/p' "$out")
	nworkers=$(grep -c '^smolscale: worker [0-9]* state=[a-z]* tasks=[0-9]* busy_ms=[0-9]* parked_ms=[0-9]* cpu_ms=[0-9]* blocked=[01]$' "$out")
	check "stats PID: one line per worker ($nworkers for threads=$nthreads)" \
		test "$nworkers" = "$nthreads"
	check "stats PID: the stall lines" out_has '^smolscale: stall-reports printed=0 suppressed=0 dropped=0 sites=0$'
	t "$ss" stats --timeout 5000 "$live"
	check "stats PID, asked again: answered" out_has ' pthreads_rerouted=20( |$)'
	kill -USR2 "$live"
	for _ in $(seq 1 100); do
		grep -q '^smolscale: stats ' "$work/live.err" && break
		sleep 0.05
	done
	rc=0
	check "SMOLSCALE_STATS_SIGNAL: the report on the program's stderr" \
		grep -q '^smolscale: stats threads=' "$work/live.err"
	exec 9>&-
	wait "$live"
	rc=$?
	check "stats PID: the program ended normally" status_is 0
	t "$ss" stats "$live"
	check "stats of a process that ended: status 1" status_is 1
fi

echo "cli: $passes passed, $fails failed, $skips skipped"
[ "$fails" = 0 ]
