/*
 * statreg.h - the live stats region: how `smolscale stats PID` asks a
 * running process for its stats.
 *
 * At the pool's start the process maps one shared page set from a memfd
 * named "smolscale-stats" (visible as /proc/PID/fd/N ->
 * "/memfd:smolscale-stats (deleted)").  A reader of the same user opens
 * that link read-write, maps it, and:
 *
 *   r = ++req                (atomic add)
 *   ++wake; FUTEX_WAKE(wake) (shared futex: another process)
 *   wait until done - r >= 0 (as int32_t; FUTEX_WAIT on done)
 *   read len and text[] under the seqlock seq (odd while written)
 *
 * The process's hidden thread ss-diag sleeps on `wake`, builds the stats
 * text, publishes it, stores done = the req it served, and wakes `done`.
 * Nothing in the process polls: a region nobody reads costs nothing.
 *
 * Both sides treat the region as untrusted input: the process reads only
 * the counters req and wake (numbers), the reader bounds-checks len.
 * The layout is versioned; a reader refuses a version it does not know.
 */
#ifndef SS_STATREG_H
#define SS_STATREG_H

#include <stdatomic.h>
#include <stdint.h>

#define SS_STATREG_NAME "smolscale-stats"
#define SS_STATREG_MAGIC "smolscale-stats"  /* 15 chars and a NUL */
#define SS_STATREG_VERSION 1u
#define SS_STATREG_SIZE (64u * 1024u)

struct ss_statreg {
	char magic[16];
	uint32_t version;
	uint32_t size;          /* bytes mapped, header included */
	int32_t pid;            /* the process that serves it */
	uint32_t reserved;
	_Atomic uint32_t wake;  /* futex: bumped by whoever wants ss-diag */
	_Atomic uint32_t req;   /* requests made (readers) */
	_Atomic uint32_t done;  /* futex: the last request served */
	_Atomic uint32_t seq;   /* seqlock over len and text */
	_Atomic uint32_t len;   /* bytes of text */
	uint32_t reserved2;
	char text[];            /* size - offsetof(text) bytes at most */
};

#endif /* SS_STATREG_H */
