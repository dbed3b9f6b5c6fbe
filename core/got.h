/*
 * got.h - the GOT slots of a loaded object: visiting them by symbol name
 * and storing into one.  Used to rewrite calls that go through the
 * PLT or the GOT: the pool layer's hooks (shim/pools.c) and the stall
 * capture's redirection of libunwind's memory probe (diag.c).
 *
 * x86-64 and aarch64, RELA relocations only (both use no other);
 * elsewhere SS_GOT_SUPPORTED is undefined and ss__got_each visits nothing.
 */
#ifndef SS_GOT_H
#define SS_GOT_H

#include <link.h>
#include <stdbool.h>

#include "internal.h"

#if defined(__x86_64__) || defined(__aarch64__)
#define SS_GOT_SUPPORTED 1
#endif

/* fn(arg, name, slot) for each JUMP_SLOT (calls through the PLT) and
 * GLOB_DAT (calls through the GOT, -fno-plt, and the function's address)
 * relocation of the object `info` that names a symbol.  The loader's
 * list must stay locked (call it from a dl_iterate_phdr callback). */
typedef void (*ss_got_fn)(void *arg, const char *name, void **slot);
SS_HIDDEN void ss__got_each(const struct dl_phdr_info *info, ss_got_fn fn,
                            void *arg);

/* Stores code into slot of the object `info` (release: a thread that
 * calls through the slot sees what the caller wrote before).  A slot in
 * the object's RELRO is made writable for the store and read-only again.
 * False if mprotect() refused. */
SS_HIDDEN bool ss__got_write(const struct dl_phdr_info *info, void **slot,
                             void *code);

#endif /* SS_GOT_H */
