// throw_lib.cc - libssthrow.so, the C++ side of the throw test (throw.sh).
//
// A C host (throw_host.c) dlopen()s this library, so the C++ runtime
// (libstdc++, libgcc_s) is loaded behind an executable that links neither:
// the case where a preloaded library's dependencies come first in the
// global scope and can take over the _Unwind_* symbols (RESEARCH.md 4.10).
//
//   double throw_many(long n)   n throw/catch of a small exception, thrown
//                               two non-inlined frames down, through a
//                               frame with a destructor (a cleanup landing
//                               pad, as in real code); returns the elapsed
//                               seconds (CLOCK_MONOTONIC)
//   long throw_many_checksum    the sum of the caught codes plus the
//                               destructor runs, so that nothing of the
//                               work can be optimised away
#include <time.h>

namespace {

struct small_error {
	long code;
};

// Read through a volatile so that the compiler cannot prove the throw
// unconditional and fold the frames together.
volatile long throw_at = 0;
long unwound;

struct guard {
	~guard() { unwound++; }
};

__attribute__((noinline)) void inner(long i)
{
	if (i >= throw_at)
		throw small_error{i & 7};
}

__attribute__((noinline)) long middle(long i)
{
	guard g;
	inner(i);
	return -1;
}

double now()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

} // namespace

extern "C" {

__attribute__((visibility("default"))) long throw_many_checksum;

__attribute__((visibility("default"))) double throw_many(long n)
{
	long sum = 0;
	unwound = 0;
	double t0 = now();
	for (long i = 0; i < n; i++) {
		try {
			sum += middle(i);
		} catch (const small_error &e) {
			sum += e.code;
		}
	}
	double t1 = now();
	throw_many_checksum = sum + unwound;
	return t1 - t0;
}

} // extern "C"
