/*
 * plug.h - what the tests/hostile/ plugins (libhplug_*.so) share: the
 * value of an item and the checksum over them.  Each plugin exports
 *   uint64_t plugin_run(int n);
 * which runs its work (n items or threads, see each plugin) and returns a
 * checksum that depends only on n.
 */
#ifndef SS_HOSTILE_PLUG_H
#define SS_HOSTILE_PLUG_H

#include <stdint.h>

#include "common.h" /* hx_mix */

#define PLUG_MAX_ITEMS 4096

uint64_t plugin_run(int n);

static inline uint64_t plug_value(uint64_t i)
{
	uint64_t h = i;

	for (unsigned r = 0; r < 2000 + i % 500; r++)
		h = hx_mix(h + r);
	return h;
}

static inline uint64_t plug_sum(const uint64_t *v, int n)
{
	uint64_t s = 0;

	for (int i = 0; i < n; i++)
		s = hx_mix(s ^ v[i]);
	return s;
}

#endif
