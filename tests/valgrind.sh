#!/usr/bin/env bash
# tests/valgrind.sh - the unit tests (tests/test_*, UNIT_TESTS in
# tests/Makefile.am) under valgrind's memcheck, in a build tree where
# `make check` has run (scripts/check runs it on build/).
#
#   tests/valgrind.sh BUILDDIR [TEST...]   the unit tests, or those named
#
# Each test program runs under memcheck with the children that Check forks
# (one process per START_TEST), each logging to a file of its own in
# BUILDDIR/tests/valgrind/.  A test fails when Check reports a failure or
# when any of its processes reports a memcheck error: an invalid access, a
# use of an uninitialised value, a bad free, or a definite leak.  Such a
# process exits 99, which Check shows as "Early exit with return value
# 99"; one killed by a signal has no exit status of its own, so every log
# is scanned for a non-zero ERROR SUMMARY as well.
#
# Programs that a test execs run under memcheck too, but for test_env's
# envprobe: 78 starts under memcheck took two minutes, and the parsers it
# runs run under memcheck in every test process anyway.  VALGRIND_SKIP=
# (empty) checks it as well; VALGRIND_SKIP=PATTERNS sets valgrind's
# --trace-children-skip.
#
# Memcheck runs one thread of a process at a time, so VALGRIND_JOBS test
# programs (default: one a CPU) run at once.  SS_SANITIZER=valgrind scales
# the tests' work down and gives each test the sanitizer builds' timeout
# (tests/util.c).  VALGRIND_OPTS adds options (e.g. --track-origins=yes
# to see where an uninitialised value came from).  tests/valgrind.supp
# holds the suppressions, each with its reason.
set -uo pipefail
if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,28p' "$0"
  [ $# -ge 1 ]; exit $?
fi
build=$(cd "$1" && pwd) || exit 2
shift
src=$(cd "$(dirname "$0")/.." && pwd)
command -v valgrind >/dev/null || {
  echo "tests/valgrind.sh: valgrind is missing (Debian package: valgrind)" >&2
  exit 2
}

if [ $# -gt 0 ]; then
  tests=("$@")
else
  # UNIT_TESTS = \ then one name a line, each but the last ending in \.
  mapfile -t tests < <(sed -n '/^UNIT_TESTS *=/,/[^\\]$/p' "$src/tests/Makefile.am" |
    grep -o 'test_[a-z_0-9]*')
fi
[ ${#tests[@]} -gt 0 ] || { echo "tests/valgrind.sh: no unit tests found" >&2; exit 2; }

# core/ registers fiber stacks with valgrind only when valgrind.h was there
# when it was compiled; without that, memcheck takes fiber switches for
# huge stack frames and reports errors that are not.  A tree built before
# valgrind was installed gets those two objects rebuilt.
if grep -q VALGRIND_STACK_REGISTER "$src/core/fiber.c" &&
   ! grep -qs 'valgrind/valgrind\.h' "$build/core/.deps/fiber.Plo"; then
  echo "tests/valgrind.sh: core/ was built without valgrind.h; rebuilding fiber.c and diag.c"
  rm -f "$build/core/fiber.lo" "$build/core/diag.lo"
  make -s -C "$build" >/dev/null || exit 2
fi
cd "$build/tests" || exit 2
make -s "${tests[@]}" envprobe || exit 2
logs=$build/tests/valgrind
rm -rf "$logs"
mkdir -p "$logs"

# What `make check` gives the tests (AM_TESTS_ENVIRONMENT), and smaller
# sizes with longer timeouts.
export SS_TEST_HELPER_DIR=$build/tests SS_SRCDIR=$src/tests SS_SANITIZER=valgrind
unset SS_SANITIZER_BUILD

vg=(valgrind --tool=memcheck
  --trace-children=yes --child-silent-after-fork=no
  --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite
  --error-exitcode=99 --num-callers=30 --fair-sched=yes
  --suppressions="$src/tests/valgrind.supp")
skip=${VALGRIND_SKIP-*/envprobe}
[ -n "$skip" ] && vg+=(--trace-children-skip="$skip")

# One test program: its report to $logs/$t.report,
# printed whole as soon as it is done, and 0 or 1 to $logs/$t.status.
run_one() {
  local t=$1 t0 rc verdict bad f
  t0=$(date +%s)
  CK_XML_LOG_FILE_NAME="$logs/$t.xml" \
    "${vg[@]}" --log-file="$logs/$t.%p.log" "./$t" </dev/null >"$logs/$t.out" 2>&1
  rc=$?
  verdict=$(grep -E '^[0-9]+%: Checks:' "$logs/$t.out" || echo 'no Check summary')
  # Processes whose memcheck errors show only in their log.
  bad=$(grep -l 'ERROR SUMMARY: [1-9]' "$logs/$t".*.log 2>/dev/null)
  # A program that printed no summary did not run its tests.
  [ "$verdict" = 'no Check summary' ] && [ $rc -eq 0 ] && rc=1
  {
    if [ $rc -eq 0 ] && [ -z "$bad" ]; then
      printf 'PASS: %-14s %4ds  %s\n' "$t" $(($(date +%s) - t0)) "$verdict"
    else
      printf 'FAIL: %-14s %4ds  %s (exit %d)\n' "$t" $(($(date +%s) - t0)) "$verdict" $rc
      grep -E ':[EF]:' "$logs/$t.out" | sed 's/^/  /'
      for f in $bad; do
        echo "  memcheck errors in $f:"
        grep -v -E '^==[0-9]+== *$' "$f" | head -n 200 | sed 's/^/    /'
      done
    fi
  } >"$logs/$t.report"
  [ $rc -eq 0 ] && [ -z "$bad" ]
  echo $? >"$logs/$t.status"
  flock "$logs/.print" cat "$logs/$t.report"
}

# VALGRIND_JOBS programs at once, the slowest first.
max=${VALGRIND_JOBS:-$(nproc 2>/dev/null || echo 2)}
order=()
for t in test_env test_chan test_fibers test_fork; do
  [[ " ${tests[*]} " == *" $t "* ]] && order+=("$t")
done
for t in "${tests[@]}"; do
  [[ " ${order[*]} " == *" $t "* ]] || order+=("$t")
done
start=$(date +%s)
running=0
for t in "${order[@]}"; do
  if [ $running -ge "$max" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
wait

pass=0 fail=0 failed=()
for t in "${tests[@]}"; do
  if [ "$(cat "$logs/$t.status" 2>/dev/null)" = 0 ]; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    failed+=("$t")
  fi
done
echo "valgrind: $(($(date +%s) - start))s with $max at a time; logs in $logs"
echo "valgrind: $pass passed, $fail failed"
[ $fail -eq 0 ] || { echo "valgrind: failed: ${failed[*]}" >&2; exit 1; }
