/*
 * pace_floor.c - what the pipelines' feeding loop costs with no pool at
 * all: the same paced clock_nanosleep to absolute deadlines with 1 µs
 * timer slack (workloads.c feed()), nothing submitted.  Its CPU per
 * message is a floor under every peer's pipeline figure.
 *
 *   pace-floor [RATE [SECONDS]]     (default 20000 messages/s for 3 s)
 *
 * Prints "pace_floor <rate> <cpu µs per message>".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>

#define MIN_PERIOD_NS 50000u    /* as workloads.c: batches below this */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double thread_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
	long rate = argc > 1 ? atol(argv[1]) : 20000;
	long secs = argc > 2 ? atol(argv[2]) : 3;
	uint64_t t0, period;
	long n, batch;
	double c0;

	if (rate <= 0 || rate > 1000000000 || secs <= 0 || secs > 3600) {
		fprintf(stderr, "usage: pace-floor [RATE [SECONDS]]\n");
		return 2;
	}
	n = rate * secs;
	period = 1000000000u / rate;
	batch = period >= MIN_PERIOD_NS ? 1 : (MIN_PERIOD_NS + period - 1) / period;
	prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
	c0 = thread_cpu_s();
	t0 = now_ns();
	for (long i = 0; i < n; i += batch) {
		uint64_t d = t0 + i * period;
		struct timespec ts = { (time_t)(d / 1000000000u), (long)(d % 1000000000u) };

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
	}
	printf("pace_floor %ld %.2f\n", rate, (thread_cpu_s() - c0) * 1e6 / n);
	return 0;
}
