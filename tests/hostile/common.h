/*
 * common.h - helpers of the tests/hostile/ programs (header-only; each
 * program includes it once).  Plain C, pthreads and libc only: the
 * programs never link libsmolscale.
 *
 * Every helper is robust to EINTR, as a real program that installs
 * handlers without SA_RESTART has to be: a signal may interrupt any
 * blocking call, natively and under the preload alike.
 */
#ifndef SS_HOSTILE_COMMON_H
#define SS_HOSTILE_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline void hx_fail(const char *prog, const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(err));
	fflush(stderr);
	_exit(2);
}

#define HX_PROG_DEFAULT "hostile"
#ifndef HX_PROG
#define HX_PROG HX_PROG_DEFAULT
#endif

#define MUST(call)                                                     \
	do {                                                           \
		int must_rc_ = (call);                                 \
		if (must_rc_ != 0)                                     \
			hx_fail(HX_PROG, #call,                        \
			        must_rc_ > 0 ? must_rc_ : errno);      \
	} while (0)

static inline uint64_t hx_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* A value that takes about ROUNDS multiplications to compute. */
static inline uint64_t hx_compute(uint64_t seed, unsigned rounds)
{
	uint64_t h = seed;

	for (unsigned r = 0; r < rounds; r++)
		h = hx_mix(h + r);
	return h;
}

static inline uint64_t hx_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sleeps the full time, resuming after each interruption. */
static inline void hx_sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static inline void hx_sem_wait(sem_t *s)
{
	while (sem_wait(s) != 0)
		if (errno != EINTR)
			hx_fail(HX_PROG, "sem_wait", errno);
}

/* All of len bytes, or 0 at end of file. */
static inline int hx_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			hx_fail(HX_PROG, "read", errno);
		if (n == 0)
			return 0;
		p += n;
		len -= (size_t)n;
	}
	return 1;
}

static inline void hx_write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			hx_fail(HX_PROG, "write", n < 0 ? errno : EIO);
		p += n;
		len -= (size_t)n;
	}
}

#endif
