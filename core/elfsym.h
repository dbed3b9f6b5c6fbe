/*
 * elfsym.h - function symbols of an ELF file, read from the file on disk.
 *
 * Two uses:
 *  - naming a frame of a stall report that dladdr() cannot name: dladdr()
 *    sees only the exported dynamic symbols (.dynsym) of loaded objects, so
 *    static functions, and every function of an executable linked without
 *    -rdynamic, come out nameless.  The full table (.symtab) is never
 *    loaded into memory (no PT_LOAD covers it): it has to be read from the
 *    file.
 *  - telling whether an object defines a function itself (the interposer
 *    wants to say "thpool_add_work is compiled into the executable", so
 *    calls to it never go through the PLT and cannot be interposed).
 *
 * Only 64-bit ELF files in the host's byte order, of type ET_EXEC or ET_DYN
 * (executables, PIEs, shared libraries), are read.  Anything else, and any
 * file whose headers, sections or strings do not fit in it, is refused:
 * ss__elf_open() returns NULL and never reads outside the file.
 *
 * Not async-signal-safe (malloc, mmap): call it from an ordinary thread.
 * No global state: distinct ss_elf may be used concurrently; the caller
 * serializes the uses of one ss_elf (the queries only read it, so several
 * concurrent queries of one ss_elf are in fact fine, but nothing promises
 * it).
 */
#ifndef SS_ELFSYM_H
#define SS_ELFSYM_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* The symbol tables of one file. */
struct ss_elf;

/*
 * Open path (open + fstat + mmap of the whole file, PROT_READ, MAP_PRIVATE;
 * the descriptor is closed before returning), validate it and sort its
 * function symbols for ss__elf_symbolize.  NULL with errno set on failure:
 * errno of open/fstat/mmap, ENOEXEC for a file that is not a regular file
 * or not an ELF file we read or is malformed, ENOMEM.
 *
 * A valid file without section headers (or without symbol tables) is not
 * an error: the queries on it just find nothing.
 *
 * The mapping stays until ss__elf_close.  A file truncated on disk while
 * it is open makes a later query fault (SIGBUS): do not open files that
 * are being rewritten (loaded objects are not, by the usual convention
 * that installers replace files by rename).
 */
SS_HIDDEN struct ss_elf *ss__elf_open(const char *path);
/* Unmap and free e; NULL is fine. */
SS_HIDDEN void ss__elf_close(struct ss_elf *e);

/*
 * Name the function that contains vaddr, a link-time address: the runtime
 * address minus the object's load bias (dlpi_addr of dl_iterate_phdr,
 * l_addr of its link_map; 0 for a non-PIE executable).
 *
 * Looks in .symtab when it has function symbols, else in .dynsym.  A
 * function symbol is STT_FUNC or STT_GNU_IFUNC, or STT_NOTYPE with a
 * nonzero size, defined in a section; it contains [value, value + size).
 * Where symbols nest, the innermost wins; among aliases, a global one, then
 * the one with fewer leading underscores ("malloc", not "__libc_malloc").
 * A zero-sized STT_FUNC symbol (hand-written assembly without .size) is
 * used only when no sized symbol contains vaddr and it is the last symbol
 * at or below vaddr, within its section.
 *
 * Returns 0 and fills name (truncated to len - 1 bytes, NUL-terminated;
 * nothing written when len is 0) and *off (vaddr - value; off may be
 * NULL), or -1 when no function symbol contains vaddr.
 */
SS_HIDDEN int ss__elf_symbolize(const struct ss_elf *e, uintptr_t vaddr,
                                char *name, size_t len, uintptr_t *off);

/*
 * 1 if e defines a function (STT_FUNC or STT_GNU_IFUNC) named name, of any
 * binding, local (static) ones included, in .symtab or .dynsym; else 0.
 * Defined: st_shndx is not SHN_UNDEF (an executable's undefined symbol with
 * a nonzero value, the canonical PLT entry of a function whose address it
 * takes, is still not a definition).  A versioned .symtab name
 * ("memcpy@@GLIBC_2.14") matches its plain name, and a name with an '@'
 * matches only itself.  Linear in the number of
 * symbols: meant for a few questions, not a loop.
 */
SS_HIDDEN int ss__elf_defines(const struct ss_elf *e, const char *name);

#endif
