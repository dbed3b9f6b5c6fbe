# extract.awk - copy static functions, by name, out of a C file, each
# behind a #line directive so that reports name the original lines.
# fuzz_env.c includes what it copies out of shim/pthread.c (patterns,
# match_any): they are static in a file that cannot be linked into a
# fuzzer (it defines pthread_create).  A function not found exactly once
# fails the build rather than fuzzing nothing.
#
#   awk -v funcs="patterns match_any" -f extract.awk FILE.c > OUT
BEGIN {
	n = split(funcs, want, " ")
	for (i = 1; i <= n; i++)
		found[want[i]] = 0
	copying = 0
}
copying {
	print
	if ($0 ~ /^}$/)
		copying = 0
	next
}
/^static [^;]*$/ {
	for (i = 1; i <= n; i++)
		if (index($0, " " want[i] "(") || index($0, "*" want[i] "(")) {
			found[want[i]]++
			printf "#line %d \"%s\"\n", FNR, FILENAME
			print
			copying = 1
			break
		}
}
END {
	for (i = 1; i <= n; i++)
		if (found[want[i]] != 1) {
			printf "extract.awk: %s: function %s found %d times, want 1\n",
			       FILENAME, want[i], found[want[i]] > "/dev/stderr"
			exit 1
		}
}
