#!/usr/bin/env bash
# tests/posix/run.sh - the Open POSIX Test Suite's conformance tests for the
# thread interfaces the preload shim reroutes, run natively and then under
# LD_PRELOAD=libsmolscale-preload.so with SMOLSCALE_PTHREAD=1.
#
# Verdict: every test that PASSes natively must PASS under the shim.  Tests
# that do not pass natively (unsupported options, tests that need a
# privilege, tests that fail on glibc itself) are listed but judged by
# nothing.  Exit status (automake's conventions): 0 pass, 1 regression,
# 77 skip (sanitizer build; suite not fetchable offline outside CI),
# 99 hard error (bad setup; fetch failure in CI).
#
# The tests come from Debian's source package posixtestsuite (the binary
# package ships none).  It is fetched once with apt-get source into a
# private cache, using a private sources list (deb-src, bookworm main, the
# mirror and keyring the system's apt uses) and private apt state dirs, so
# nothing system-wide changes; the tests are compiled once per compiler
# into the same cache.  Running them needs no root.
#
# By hand, from a build dir:
#   SS_PRELOAD=$PWD/preload/.libs/libsmolscale-preload.so bash ../tests/posix/run.sh
#   bash ../tests/posix/run.sh --list
#   SS_PRELOAD=... bash ../tests/posix/run.sh --only join --only pthread_once/2-1
#
# Environment:
#   SS_PRELOAD          absolute path of libsmolscale-preload.so (required
#                       unless --list or --native-only)
#   SS_SANITIZER_BUILD  non-empty: skip (a sanitized preload library cannot
#                       be loaded into unsanitized programs)
#   SS_POSIX_TESTS      quick (default): native once, shim once; a test
#                       failing under the shim is rerun to tell flaky from
#                       broken (see "Flaky tests" below).
#                       full: also a pass with the library preloaded but
#                       routing off (SMOLSCALE_PTHREAD unset: must change
#                       nothing), and a second shim pass (both must pass).
#   SS_POSIX_CACHE      cache dir (default ~/.cache/smolscale/posixtestsuite,
#                       $XDG_CACHE_HOME honoured)
#   SS_POSIX_SRC        use this unpacked posixtestsuite tree, fetch nothing
#   SS_POSIX_JOBS       tests run at once (default: 2 x CPUs, at least 4;
#                       most tests mostly sleep, and natively none is
#                       disturbed even 12 at once on 2 cores; see FLAKY)
#   SS_POSIX_TIMEOUT    seconds per test run (default 20)
#   SS_POSIX_REQUIRE    1: a failed fetch is a hard error, not a skip (the
#                       default when CI=true)
#   SS_POSIX_KEEP       1: keep the per-run work dir (outputs of every run)
#   CC                  compiler for the tests (default cc)
set -euo pipefail

readonly SCRIPT_VERSION=2   # bump when the way tests are built changes
readonly SUITE=bookworm     # Debian suite posixtestsuite is taken from

# The interfaces this suite covers: those the shim reimplements or whose
# behaviour depends on what a "thread" is.
readonly IFACES=(pthread_create pthread_join pthread_detach pthread_exit
  pthread_self pthread_equal pthread_once pthread_key_create
  pthread_key_delete pthread_getspecific pthread_setspecific
  pthread_cleanup_push pthread_cleanup_pop pthread_cancel pthread_kill)

# Time limit: 20 s a run (SS_POSIX_TIMEOUT).  Natively on 2 cores every
# test ends in under 11 s, even 12 at once; the longest sleep 10 s by design
# (pthread_create/10-1 waits that long for a SIGSEGV that may not come,
# pthread_join/6-3 sends signals for 10 s).  The one test that loops or hangs
# natively is excluded below (pthread_create/1-6), the ones that hung by a
# race are patched (UNBLOCK_AT_TEARDOWN).  A test that runs into the limit
# is a TIMEOUT: a failure, never hidden.

# Flaky tests.  Natively, 12 whole passes (5 four at a time, 4 twelve at a
# time, 3 eight at a time beside two CPU-bound processes) on 2 cores: every
# test but the two that never pass natively passed every time, except one
# SIGSEGV of pthread_detach/4-3.  The suite's "does not return EINTR" tests
# (the UNBLOCK_AT_TEARDOWN ones) have this second race: their test thread
# loops over the ~30 thread attribute scenarios of threads_scenarii.c,
# creating a thread per scenario (detached in some) and waiting only for a
# semaphore the thread posts just before it returns; one scenario gives
# every thread the same malloc'd stack (pthread_attr_setstack), so when the
# loop comes round again while the last thread on that stack has posted but
# not yet left it, two threads share a stack and the process dies (SIGSEGV,
# sp inside the malloc'd stack): pthread_detach/4-3 about 3 runs in 100
# under load, natively.
# A test failing under the preload is rerun alone (nothing else running):
# a listed test that failed with the race's signature only and passed at
# least two of four lone reruns is reported as flaky, not as a regression
# (alone and natively, pthread_detach/4-3 lost the race 2 runs in 10 on a
# loaded machine, and 0 in 20 under the shim); any other test failing once
# is a regression, whatever its two reruns do (they are shown: an
# intermittent failure is a shim bug too).
# A test failing natively is rerun alone once; passing then, it counts as
# passing natively (so the set of tests the shim must pass only grows).
# Only that failure is excused: a listed test failing otherwise (FAIL,
# TIMEOUT, another signal) is a regression like any other.  Under the shim,
# with 8 at once beside two CPU hogs: 4 SIGSEGVs in 96 runs of
# pthread_detach/4-3 (natively 1 in 96), every one with its sp in the heap.
declare -A FLAKY=()
readonly FLAKY_VERDICT=SIGNAL-SEGV
for t in pthread_cancel/5-2 pthread_create/14-1 pthread_detach/4-3 \
  pthread_equal/2-1 pthread_join/6-3 pthread_kill/8-1 pthread_once/6-1; do
  FLAKY[$t]="EINTR test, SIGSEGV: reuses one user-allocated thread stack per scenario without knowing the previous thread has left it"
done

# Tests that take a second or more natively (sleeps by design), started
# first so that the pass ends sooner (the longest take 10 s: a run is
# never shorter).
readonly SLOW=(pthread_create/10-1 pthread_join/6-3 pthread_cancel/2-2
  pthread_cancel/2-3 pthread_join/1-1 pthread_cancel/1-1 pthread_cancel/1-2
  pthread_cancel/3-1 pthread_kill/1-1)

# The suite's "does not return EINTR" tests share a teardown race that hangs
# them natively about one run in ten (pthread_detach/4-3: 3 hangs in 30
# runs alone): two threads keep sending SIGUSR1/SIGUSR2 to the process, each
# waiting (sem_wait) for the handler to post before sending the next; main
# clears do_it and joins them, but the only threads with those signals
# unblocked are the test workers, which exit on do_it == 0.  A signal sent
# just before is then never delivered, its handler never posts, and the
# sender waits forever.  The copy compiled here unblocks the two signals in
# main right after "do ... do_it = 0 ... while (do_it);", so the last signal
# always finds a thread; what is tested (no EINTR while signals arrive) does
# not change.  The patch must apply exactly once or the test does not build.
UNBLOCK_AT_TEARDOWN=" pthread_cancel/5-2 pthread_create/14-1 pthread_detach/4-3 pthread_equal/2-1 pthread_join/6-3 pthread_kill/8-1 pthread_once/6-1 "

# Tests that are not run at all, with why.
declare -A EXCLUDE=(
  # As root it starts 4 SCHED_FIFO threads at priority max-1 that busy-wait
  # (and, polling a plain int, may never stop) to check that a min-priority
  # thread does not run: a test of the kernel's real-time scheduler, which
  # starves every other test running at the same time for up to alarm(60)
  # and fails by SIGALRM natively on a machine with fewer than 5 CPUs.
  [pthread_create/1-6]="real-time scheduling test: SCHED_FIFO busy loops starve the machine; fails natively with fewer than 5 CPUs"
)

usage() {
  cat <<'EOF'
usage: run.sh [--list] [--only IFACE|IFACE/TEST]... [--native-only] [-j N] [--keep]
  --list         list the tests (fetches the suite if needed), run nothing
  --only X       run only interface X (pthread_join or join) or test X
                 (pthread_join/1-1); repeatable, or comma-separated
  --native-only  run natively only (no SS_PRELOAD needed)
  --full         as SS_POSIX_TESTS=full
  -j N           run N tests at once
  --keep         keep the work dir with every test's output
EOF
}

list_only=0 native_only=0 keep=${SS_POSIX_KEEP:-0}
mode=${SS_POSIX_TESTS:-quick}
jobs=${SS_POSIX_JOBS:-}
only=()
while (($#)); do
  case $1 in
    --list) list_only=1 ;;
    --only) shift; IFS=, read -ra o <<<"${1:?--only needs an argument}"; only+=("${o[@]}") ;;
    --only=*) IFS=, read -ra o <<<"${1#--only=}"; only+=("${o[@]}") ;;
    --native-only) native_only=1 ;;
    --full) mode=full ;;
    --quick) mode=quick ;;
    -j) shift; jobs=${1:?-j needs a number} ;;
    -j*) jobs=${1#-j} ;;
    --keep) keep=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 99 ;;
  esac
  shift
done
case $mode in quick|full) ;; *) echo "run.sh: SS_POSIX_TESTS must be quick or full, not '$mode'" >&2; exit 99 ;; esac

if [[ -n ${SS_SANITIZER_BUILD:-} ]]; then
  echo "SKIP: sanitizer build ($SS_SANITIZER_BUILD): a sanitized preload library cannot be preloaded into the suite's unsanitized programs"
  exit 77
fi

if ((!list_only && !native_only)); then
  if [[ -z ${SS_PRELOAD:-} ]]; then
    echo "run.sh: SS_PRELOAD is not set (absolute path of libsmolscale-preload.so)" >&2; exit 99
  fi
  if [[ ! -f $SS_PRELOAD ]]; then
    echo "run.sh: SS_PRELOAD=$SS_PRELOAD: no such file (build the preload library first)" >&2; exit 99
  fi
  case $SS_PRELOAD in /*) ;; *) SS_PRELOAD=$(cd "$(dirname "$SS_PRELOAD")" && pwd)/$(basename "$SS_PRELOAD") ;; esac
fi

ncpu=$(nproc 2>/dev/null || echo 2)
if [[ -z $jobs ]]; then jobs=$((2 * ncpu)); ((jobs >= 4)) || jobs=4; fi
tmo=${SS_POSIX_TIMEOUT:-20}
CC=${CC:-cc}

# ---------------------------------------------------------------- the cache
cache_default=${XDG_CACHE_HOME:-${HOME:-/nonexistent}/.cache}/smolscale/posixtestsuite
CACHE=${SS_POSIX_CACHE:-$cache_default}
if ! mkdir -p "$CACHE" 2>/dev/null || [[ ! -w $CACHE ]]; then
  CACHE=${TMPDIR:-/tmp}/smolscale-posixtestsuite-$(id -u)
  mkdir -p "$CACHE"
fi
# One run at a time fetches or builds (several build dirs may share it).
exec 9>"$CACHE/.lock"
flock 9

require_fetch=${SS_POSIX_REQUIRE:-}
[[ -z $require_fetch && ${CI:-} == true ]] && require_fetch=1

fetch_failed() {
  echo "run.sh: could not fetch Debian's posixtestsuite source package: $1"
  if [[ -n $require_fetch ]]; then
    echo "ERROR: fetching is required here (CI=true or SS_POSIX_REQUIRE set)"
    exit 99
  fi
  echo "SKIP: no Open POSIX Test Suite (offline?). Set SS_POSIX_SRC to an unpacked posixtestsuite tree to run without fetching."
  exit 77
}

# The mirror and keyring of the system's Debian entry: deb822 files first
# (URIs:/Signed-By: of a stanza whose Suites name $SUITE), then one-line
# lists; deb.debian.org and the archive keyring if nothing matches.
system_mirror() {
  local f uri="" key=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    uri=$(awk -v suite="$SUITE" '
      function flush() { if (ok && u != "") { print u "\t" k; found = 1; exit } ok = 0; u = ""; k = "" }
      /^[ \t]*$/ { flush(); next }
      /^#/ { next }
      tolower($1) == "uris:" { u = $2 }
      tolower($1) == "signed-by:" { k = $2 }
      tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
      END { if (!found) flush() }' "$f")
    [[ -n $uri ]] && { printf '%s\n' "$uri"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    uri=$(awk -v suite="$SUITE" '
      $1 == "deb" {
        k = ""; i = 2
        if ($2 ~ /^\[/) {
          for (; i <= NF; i++) {
            if ($i ~ /signed-by=/) { k = $i; sub(/.*signed-by=/, "", k); sub(/\]$/, "", k) }
            if ($i ~ /\]$/) { i++; break }
          }
        }
        if ($(i + 1) == suite) { print $i "\t" k; exit }
      }' "$f")
    [[ -n $uri ]] && { printf '%s\n' "$uri"; return; }
  done
  printf '%s\t%s\n' http://deb.debian.org/debian /usr/share/keyrings/debian-archive-keyring.gpg
}

find_suite() {  # prints the unpacked tree in the cache, if complete
  local d
  for d in "$CACHE"/src/posixtestsuite-*/; do
    [[ -f $d/.smolscale-complete && -f $d/include/posixtest.h ]] && { printf '%s\n' "${d%/}"; return 0; }
  done
  return 1
}

fetch_suite() {
  command -v apt-get >/dev/null || fetch_failed "apt-get not found"
  command -v dpkg-source >/dev/null || fetch_failed "dpkg-source not found (install dpkg-dev)"
  local mirror uri key apt="$CACHE/apt" log
  mirror=$(system_mirror); uri=${mirror%%$'\t'*}; key=${mirror#*$'\t'}
  echo "fetching posixtestsuite source ($SUITE main from $uri) into $CACHE"
  rm -rf "$apt" "$CACHE/src.new"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/etc" "$CACHE/src.new"
  printf 'deb-src [%s] %s %s main\n' "${key:+signed-by=$key}" "$uri" "$SUITE" | sed 's/\[\] //' >"$apt/etc/sources.list"
  # Only paths under $apt; apt.conf.d is still read (proxies, mirrors).
  local -a o=(
    -o "Dir::Etc::SourceList=$apt/etc/sources.list" -o Dir::Etc::SourceParts=-
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
    -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
    -o Acquire::Retries=2 -o Acquire::http::Timeout=30 -o Acquire::https::Timeout=30
    -o Acquire::Languages=none -o APT::Get::Only-Source=true)
  # As root apt drops to _apt for downloads, which cannot write here.
  ((EUID == 0)) && o+=(-o APT::Sandbox::User=root)
  log="$CACHE/fetch.log"
  if ! apt-get "${o[@]}" -q update >"$log" 2>&1 || grep -q '^[WE]: Failed to fetch\|^E:' "$log"; then
    fetch_failed "apt-get update failed:$(printf '\n'; tail -5 "$log")"
  fi
  if ! (cd "$CACHE/src.new" && apt-get "${o[@]}" -q source posixtestsuite) >>"$log" 2>&1; then
    fetch_failed "apt-get source failed:$(printf '\n'; tail -5 "$log")"
  fi
  local d
  d=$(find "$CACHE/src.new" -mindepth 1 -maxdepth 1 -type d -name 'posixtestsuite-*' | head -1)
  [[ -n $d && -f $d/include/posixtest.h ]] || fetch_failed "no posixtestsuite tree after apt-get source (see $log)"
  dpkg-parsechangelog -l "$d/debian/changelog" -S Version >"$d/.smolscale-complete" 2>/dev/null || echo unknown >"$d/.smolscale-complete"
  rm -rf "$CACHE/src"
  mkdir -p "$CACHE/src"
  mv "$d" "$CACHE/src/"
  rm -rf "$CACHE/src.new" "$apt"   # the index is 20 MB; the tree is all we need
  echo "fetched posixtestsuite $(cat "$CACHE/src/$(basename "$d")/.smolscale-complete")"
}

if [[ -n ${SS_POSIX_SRC:-} ]]; then
  SRC=$(cd "$SS_POSIX_SRC" && pwd)
  [[ -f $SRC/include/posixtest.h ]] || { echo "run.sh: SS_POSIX_SRC=$SS_POSIX_SRC has no include/posixtest.h" >&2; exit 99; }
else
  t0=$SECONDS
  if ! SRC=$(find_suite); then
    fetch_suite
    SRC=$(find_suite)
    echo "fetch took $((SECONDS - t0)) s"
  fi
fi
CONF=$SRC/conformance/interfaces

# ---------------------------------------------------------------- the tests
# A test is NUMBER-NUMBER.c in an interface dir or its speculative/ subdir
# (the suite's own locate-test rule).  The NUMBER-NUMBER.sh "tests" of
# these interfaces only print "tested implicitly via assertion N" and exit
# 0: they exercise no thread code and are not run.
all_tests=()
for i in "${IFACES[@]}"; do
  [[ -d $CONF/$i ]] || { echo "run.sh: $CONF/$i missing from the suite" >&2; exit 99; }
  while IFS= read -r f; do
    all_tests+=("${f%.c}")
  done < <(cd "$CONF" && find "$i" -name '[0-9]*-[0-9]*.c' | sort -V)
done

selected() {  # $1 = iface/[speculative/]N-M
  ((${#only[@]})) || return 0
  local x
  for x in "${only[@]}"; do
    [[ $x == pthread_* ]] || x=pthread_$x
    [[ $1 == "$x" || ${1%%/*} == "$x" ]] && return 0
  done
  return 1
}
tests=()
for t in "${all_tests[@]}"; do selected "$t" && tests+=("$t"); done
if ((${#only[@]} && ${#tests[@]} == 0)); then
  echo "run.sh: --only ${only[*]} matches no test (see --list)" >&2; exit 99
fi

if ((list_only)); then
  for t in "${tests[@]}"; do
    note=""
    [[ -n ${EXCLUDE[$t]:-} ]] && note="  (not run: ${EXCLUDE[$t]})"
    [[ -n ${FLAKY[$t]:-} ]] && note="  (flaky: ${FLAKY[$t]})"
    printf '%s%s\n' "$t" "$note"
  done
  exit 0
fi

# ---------------------------------------------------------------- building
# Flags as the suite's Makefile and debian LDFLAGS, but -O0 and no -Werror.
# The 2002-2005 tests poll plain (not volatile) globals set by other threads
# (e.g. pthread_equal/2-1: while (do_it)); gcc 12 at -O2 hoists those loads
# and the loops never end.  At -O0, too, glibc's inline pthread_equal
# (__USE_EXTERN_INLINES, -O1 and up) is not used: every pthread_* call goes
# through the PLT, where the preload library can catch it.  Warnings about
# the old code are not what is tested.
CFLAGS_PTS=(-std=gnu99 -O0 -g -D_POSIX_C_SOURCE=200112L -D_GNU_SOURCE -w -pthread)
LIBS_PTS=(-lrt)
key=$( { echo "$SCRIPT_VERSION $SRC $(cat "$SRC/.smolscale-complete" 2>/dev/null)"; command -v "$CC"; "$CC" --version 2>&1 | head -1
         echo "${CFLAGS_PTS[*]} ${LIBS_PTS[*]}"; } | sha256sum | cut -c1-16)
BIN=$CACHE/bin-$key
export CC SRC CONF BIN UNBLOCK_AT_TEARDOWN
export CFLAGS_PTS_S="${CFLAGS_PTS[*]}" LIBS_PTS_S="${LIBS_PTS[*]}"

# shellcheck disable=SC2317  # run by xargs through bash -c
build_one() {  # $1 = test; writes $BIN/$1 (program), $1.buildonly, or $1.cfail
  local t=$1 src=$CONF/$1.c out=$BIN/$1
  read -ra cf <<<"$CFLAGS_PTS_S"; read -ra lb <<<"$LIBS_PTS_S"
  mkdir -p "$(dirname "$out")"
  rm -f "$out" "$out.o" "$out.buildonly" "$out.cfail"
  case $UNBLOCK_AT_TEARDOWN in
    *" $t "*)
      perl -0pe 's/(while\s*\(\s*do_it\s*\)\s*;)/$1 \/\* smolscale: teardown race fix \*\/ pthread_sigmask(SIG_UNBLOCK, &usersigs, NULL);/g' \
        "$src" >"$out.patched.c"
      if [[ $(grep -c 'smolscale: teardown race fix' "$out.patched.c") != 1 ]]; then
        echo "run.sh: the teardown patch does not apply once to $src" >"$out.cfail"; return 0
      fi
      # its includes ("testfrmw.c") are found beside the original
      cf+=(-iquote "$(dirname "$src")"); src=$out.patched.c ;;
  esac
  if ! "$CC" "${cf[@]}" -I"$SRC/include" -c "$src" -o "$out.o" >"$out.log" 2>&1; then
    mv "$out.log" "$out.cfail"; return 0
  fi
  # As the suite: a file without main() is a compile-only test.
  if ! nm -g "$out.o" | grep -q ' T main$'; then
    mv "$out.log" "$out.buildonly"; rm -f "$out.o"; return 0
  fi
  if ! "$CC" "${cf[@]}" "$out.o" -o "$out" "${lb[@]}" >>"$out.log" 2>&1; then
    mv "$out.log" "$out.cfail"
  fi
  rm -f "$out.o" "$out.log"
}
export -f build_one

if [[ ! -f $BIN/.complete ]]; then
  t0=$SECONDS
  echo "building ${#all_tests[@]} tests with $CC into $BIN"
  # binaries of other compilers or script versions unused for a week go
  find "$CACHE" -maxdepth 1 -name 'bin-*' -mtime +7 -exec rm -rf {} + 2>/dev/null || true
  rm -rf "$BIN"; mkdir -p "$BIN"
  # shellcheck disable=SC2016
  printf '%s\n' "${all_tests[@]}" | xargs -P "$ncpu" -I{} bash -c 'build_one "$1"' _ {}
  built=$(find "$BIN" -type f -perm -u+x | wc -l)
  if ((built == 0)); then   # a broken compiler: say so, cache nothing
    echo "run.sh: no test could be built with $CC; for instance $CONF/${all_tests[0]}.c:" >&2
    cat "$BIN/${all_tests[0]}.cfail" >&2 || true
    rm -rf "$BIN"
    exit 99
  fi
  touch "$BIN/.complete"
  echo "build took $((SECONDS - t0)) s"
fi
touch "$BIN"   # in use
flock -u 9

# ---------------------------------------------------------------- running
WORK=$(mktemp -d "${TMPDIR:-/tmp}/smolscale-posix.XXXXXX")
if ((keep)); then echo "work dir (kept): $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi
export WORK tmo SS_PRELOAD="${SS_PRELOAD:-}"

# A run: cd to a scratch dir, no stdin, a time limit over the whole process
# group (timeout's default), the environment the pass asks for.  timeout
# itself is never preloaded: env, which it runs, sets LD_PRELOAD for the test.
# shellcheck disable=SC2317  # run by xargs through bash -c
run_one() {  # $1 = pass (native|off|shim|*-rerunN), $2 = test, $3 = limit
  local pass=$1 t=$2 lim=$3 base rc=0 s e
  base=$WORK/$pass/$t
  mkdir -p "$base.d"
  local -a envv=(env -u LD_PRELOAD -u SMOLSCALE_PTHREAD)
  case $pass in
    off*) envv+=(LD_PRELOAD="$SS_PRELOAD") ;;
    shim*) envv+=(LD_PRELOAD="$SS_PRELOAD" SMOLSCALE_PTHREAD=1) ;;
  esac
  s=$(date +%s%N)
  # (bash's "Segmentation fault" job report goes to /dev/null: the verdict
  # says SIGNAL-SEGV.)
  { (cd "$base.d" && exec timeout -k 5 "$lim" "${envv[@]}" "$BIN/$t" </dev/null >"$base.out" 2>&1); } 2>/dev/null || rc=$?
  e=$(date +%s%N)
  echo "$rc $(((e - s) / 1000000))" >"$base.rc"
  rm -rf "$base.d"
}
export -f run_one

verdict() {  # $1 = exit status -> word
  case $1 in
    0) echo PASS ;; 1) echo FAIL ;; 2) echo UNRESOLVED ;; 4) echo UNSUPPORTED ;;
    5) echo UNTESTED ;; 124|137) echo TIMEOUT ;;
    *) if (($1 > 128)); then echo "SIGNAL-$(kill -l $(($1 - 128)) 2>/dev/null || echo $(($1 - 128)))"; else echo "EXIT-$1"; fi ;;
  esac
}
status_of() { cut -d' ' -f1 "$WORK/$1/$2.rc"; }
ms_of() { cut -d' ' -f2 "$WORK/$1/$2.rc"; }

run_pass() {  # $1 = pass, $2 = parallel jobs, rest = tests
  local pass=$1 j=$2; shift 2
  local t
  for t in "$@"; do
    printf '%s\0%s\0%s\0' "$pass" "$t" "$tmo"
  done | xargs -0 -n3 -P "$j" bash -c 'run_one "$@"' _
}

# Runnable tests; compile failures and compile-only tests are reported.
runnable=() notrun=()
for t in "${tests[@]}"; do
  if [[ -n ${EXCLUDE[$t]:-} ]]; then notrun+=("$t: not run: ${EXCLUDE[$t]}")
  elif [[ -f $BIN/$t.cfail ]]; then notrun+=("$t: does not compile: $(grep -m1 -i 'error' "$BIN/$t.cfail" || head -1 "$BIN/$t.cfail")")
  elif [[ -f $BIN/$t.buildonly ]]; then notrun+=("$t: compile-only test (no main), compiles")
  elif [[ -x $BIN/$t ]]; then runnable+=("$t")
  else notrun+=("$t: not built"); fi
done
# run order: the slow ones first
order=()
for t in "${SLOW[@]}"; do
  for u in "${runnable[@]}"; do [[ $u == "$t" ]] && order+=("$t"); done
done
for u in "${runnable[@]}"; do [[ " ${SLOW[*]} " == *" $u "* ]] || order+=("$u"); done

# The preload library must load and bind pthread_create, or the shim passes
# would test glibc again and pass for nothing.
if ((!native_only)); then
  probe_src=$WORK/probe.c probe=$WORK/probe
  cat >"$probe_src" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
int main(void) {
  Dl_info i;
  void *p = dlsym(RTLD_DEFAULT, "pthread_create");
  if (!p || !dladdr(p, &i) || !i.dli_fname) return 2;
  puts(i.dli_fname);
  return 0;
}
EOF
  "$CC" -pthread -o "$probe" "$probe_src" -ldl
  bound=$(LD_PRELOAD="$SS_PRELOAD" "$probe" 2>&1) || true
  if [[ $(realpath -e "$bound" 2>/dev/null) != "$(realpath "$SS_PRELOAD")" ]]; then
    echo "ERROR: with LD_PRELOAD=$SS_PRELOAD, pthread_create binds to: $bound"
    echo "the preload library does not interpose pthread_create; the shim run would test nothing"
    exit 1
  fi
fi

echo "Open POSIX Test Suite $(cat "$SRC/.smolscale-complete" 2>/dev/null || basename "$SRC"): ${#runnable[@]} tests to run (${#tests[@]} selected), mode $mode, $jobs at once, ${tmo}s limit"

t0=$SECONDS
run_pass native "$jobs" "${order[@]}"
echo "native pass: $((SECONDS - t0)) s"

native_pass=() native_other=()
for t in "${runnable[@]}"; do
  if [[ $(status_of native "$t") == 0 ]]; then native_pass+=("$t")
  else native_other+=("$t"); fi
done

# A native non-pass may be load-induced: rerun it alone, so that the "must
# pass under the shim" set does not shrink by chance.
if ((${#native_other[@]})); then
  retry=()
  for t in "${native_other[@]}"; do
    case $(status_of native "$t") in 4|5) ;; *) retry+=("$t") ;; esac
  done
  if ((${#retry[@]})); then
    run_pass native-rerun 1 "${retry[@]}"
    native_other=()
    for t in "${runnable[@]}"; do
      [[ $(status_of native "$t") == 0 ]] && continue
      if [[ -f $WORK/native-rerun/$t.rc && $(status_of native-rerun "$t") == 0 ]]; then
        echo "note: $t: native $(verdict "$(status_of native "$t")") under load, PASS alone: counted as passing natively"
        native_pass+=("$t")
      else
        native_other+=("$t")
      fi
    done
  fi
fi

if ((native_only)); then
  echo
  for t in "${runnable[@]}"; do
    printf '%-40s %-12s %6d ms\n' "$t" "$(verdict "$(status_of native "$t")")" "$(ms_of native "$t")"
  done
  echo
  echo "${#runnable[@]} tests: ${#native_pass[@]} pass natively; ${#native_other[@]} not passing natively"
  exit 0
fi

passes=(shim)
[[ $mode == full ]] && passes=(off shim shim2)
must=()
for t in "${order[@]}"; do [[ " ${native_pass[*]} " == *" $t "* ]] && must+=("$t"); done
for p in "${passes[@]}"; do
  t0=$SECONDS
  run_pass "$p" "$jobs" "${must[@]}"
  echo "$p pass: $((SECONDS - t0)) s"
done

# Failing under the preload: rerun alone (no other test of this suite
# running), in the same pass.  A regression unless the test is FLAKY,
# failed with the race's signature ($FLAKY_VERDICT) only, and passed at
# least two of its four lone reruns; for any other test a failure under load
# is a regression even if its two reruns pass (they are shown, to tell a
# deterministic bug from a race).
regress=() flaky_seen=() ok=()
for t in "${native_pass[@]}"; do
  bad=""
  for p in "${passes[@]}"; do
    [[ $(status_of "$p" "$t") == 0 ]] || bad+=" $p"
  done
  if [[ -z $bad ]]; then ok+=("$t"); continue; fi
  rerun_ok=1
  for p in $bad; do
    [[ $(verdict "$(status_of "$p" "$t")") == "$FLAKY_VERDICT" ]] || rerun_ok=0
  done
  for p in $bad; do
    # Two lone reruns; a listed test gets four, and may lose the race
    # again in up to two of them (natively it failed 2 runs in 10 alone
    # on a loaded CI machine), as long as every failure is the race's.
    passed=0 failed=0 reruns=2
    [[ -n ${FLAKY[$t]:-} ]] && reruns=4
    for ((n = 1; n <= reruns; n++)); do
      run_one "$p-rerun$n" "$t" "$tmo"
      if [[ $(status_of "$p-rerun$n" "$t") == 0 ]]; then
        passed=$((passed + 1))
      else
        failed=$((failed + 1))
        [[ $(verdict "$(status_of "$p-rerun$n" "$t")") == "$FLAKY_VERDICT" ]] || rerun_ok=0
      fi
    done
    if [[ -n ${FLAKY[$t]:-} ]]; then
      ((passed >= 2)) || rerun_ok=0
    else
      ((failed == 0)) || rerun_ok=0
    fi
  done
  if ((rerun_ok)) && [[ -n ${FLAKY[$t]:-} ]]; then
    flaky_seen+=("$t")
    ok+=("$t")
  else
    regress+=("$t:$bad")
  fi
done

echo
echo "results (native / ${passes[*]}):"
for t in "${runnable[@]}"; do
  line=$(printf '%-40s %-11s' "$t" "$(verdict "$(status_of native "$t")")")
  for p in "${passes[@]}"; do
    if [[ -f $WORK/$p/$t.rc ]]; then line+=$(printf ' %-11s' "$(verdict "$(status_of "$p" "$t")")"); else line+=$(printf ' %-11s' -); fi
  done
  echo "$line"
done

if ((${#notrun[@]})); then
  echo
  echo "not run:"
  printf '  %s\n' "${notrun[@]}"
fi

shown_out() {  # $1 = pass, $2 = test: its output, indented; of a long
  # one the first 5 and the last 30 lines (the verdict is at the end)
  local f=$WORK/$1/$2.out n
  n=$(wc -l <"$f")
  if ((n <= 40)); then
    sed 's/^/    | /' "$f"
  else
    sed -n '1,5s/^/    | /p' "$f"
    echo "    | ... ($((n - 35)) lines)"
    tail -n 30 "$f" | sed 's/^/    | /'
  fi
  return 0
}
last_line() {
  local l
  l=$(grep -v '^[[:space:]]*$' "$1" | tail -n 1 | cut -c1-200)
  printf '%s\n' "${l:-(no output)}"
}

if ((${#flaky_seen[@]})); then
  echo
  echo "flaky (known test race, its signature $FLAKY_VERDICT only, then passed alone at least twice in four):"
  for t in "${flaky_seen[@]}"; do echo "  $t: ${FLAKY[$t]}"; done
fi

echo
echo "${#runnable[@]} tests: ${#native_pass[@]} pass natively, of which ${#ok[@]} pass with the shim; ${#native_other[@]} not passing natively${native_other:+ (listed)}"
for t in "${native_other[@]}"; do
  v=$(verdict "$(status_of native "$t")")
  r=""
  [[ -f $WORK/native-rerun/$t.rc ]] && r=", alone: $(verdict "$(status_of native-rerun "$t")")"
  echo "  not passing natively: $t: $v$r: $(last_line "$WORK/native/$t.out")"
done

if ((${#regress[@]})); then
  echo
  echo "REGRESSIONS (pass natively, not under the preload): ${#regress[@]}"
  for r in "${regress[@]}"; do
    t=${r%%:*}
    for p in ${r#*:}; do
      case $p in
        off) what="preloaded, SMOLSCALE_PTHREAD unset" ;;
        shim2) what="SMOLSCALE_PTHREAD=1, second pass" ;;
        *) what="SMOLSCALE_PTHREAD=1" ;;
      esac
      reruns="$(verdict "$(status_of "$p-rerun1" "$t")"), $(verdict "$(status_of "$p-rerun2" "$t")")"
      echo "--- $t [$what]: $(verdict "$(status_of "$p" "$t")") in $(ms_of "$p" "$t") ms (alone: $reruns): $(last_line "$WORK/$p/$t.out")"
      shown_out "$p" "$t"
    done
  done
  exit 1
fi
exit 0
