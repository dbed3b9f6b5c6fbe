/*
 * static_user.c - user.c with the thpool pool linked into the executable
 * (built with thpool.c, no libthpool.so) and its symbols exported
 * (-rdynamic): the executable calls thpool_add_work directly, through no
 * GOT or PLT entry, so the interposer cannot reroute it and must say at
 * start-up that it leaves it alone (run.sh looks for a line matching
 * "smolscale: .*thpool_add_work.*left alone").  Prints what user prints,
 * with every item on the pool's threads even under the interposer.
 */
#define USER_NAME "static_user"
#include "user.c"
