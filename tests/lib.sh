# tests/lib.sh - shell helpers of the script tests (tests/*/run.sh and
# the like).  Sourced: `. "$(dirname "$0")/../lib.sh"`.

# selected ID PATTERNS: whether case ID is one of PATTERNS (a space-
# separated list of ids or globs); every case is when PATTERNS is empty.
selected() {
	local id=$1 pat
	[ -z "${2:-}" ] && return 0
	for pat in $2; do
		# shellcheck disable=SC2053
		[[ $id == $pat ]] && return 0
	done
	return 1
}

# describe_rc RC: an exit status in words, as timeout(1) and the shell
# report it (124 and 137: timeout's; above 128: a signal).
describe_rc() {
	local rc=$1
	case $rc in
	124 | 137) echo "timed out (hang)" ;;
	*) if [ "$rc" -gt 128 ]; then
		echo "exit $rc (signal $((rc - 128)): $(kill -l $((rc - 128)) 2>/dev/null))"
	else
		echo "exit $rc"
	fi ;;
	esac
}

# require_env VAR...: fail (exit 1) unless each is set, as make check sets
# them (AM_TESTS_ENVIRONMENT in tests/Makefile.am).
require_env() {
	local v
	for v in "$@"; do
		if [ -z "${!v:-}" ]; then
			echo "FAIL: $v is not set (run through make check)"
			exit 1
		fi
	done
}
