/*
 * got.c - the GOT slots of a loaded object (got.h).
 */
#define _GNU_SOURCE
#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "got.h"

#if defined(__x86_64__)
#define R_JUMP_SLOT R_X86_64_JUMP_SLOT
#define R_GLOB_DAT R_X86_64_GLOB_DAT
#elif defined(__aarch64__)
#define R_JUMP_SLOT R_AARCH64_JUMP_SLOT
#define R_GLOB_DAT R_AARCH64_GLOB_DAT
#endif

void ss__got_each(const struct dl_phdr_info *info, ss_got_fn fn, void *arg)
{
#if defined(SS_GOT_SUPPORTED)
	const ElfW(Dyn) *dyn = NULL;
	uintptr_t base = info->dlpi_addr;
	uintptr_t symtab = 0, strtab = 0, jmprel = 0, rela = 0;
	size_t strsz = 0, pltsz = 0, relasz = 0, relaent = sizeof(ElfW(Rela));
	long pltrel = DT_RELA;

	for (int i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(base + info->dlpi_phdr[i].p_vaddr);
	if (!dyn)
		return;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		/* The loader relocates these in place on x86-64 and aarch64;
		 * an unrelocated one lies below the base. */
		uintptr_t v = dyn->d_un.d_ptr;
		uintptr_t ptr = v < base ? v + base : v;
		switch (dyn->d_tag) {
		case DT_SYMTAB: symtab = ptr; break;
		case DT_STRTAB: strtab = ptr; break;
		case DT_STRSZ: strsz = dyn->d_un.d_val; break;
		case DT_JMPREL: jmprel = ptr; break;
		case DT_PLTRELSZ: pltsz = dyn->d_un.d_val; break;
		case DT_PLTREL: pltrel = (long)dyn->d_un.d_val; break;
		case DT_RELA: rela = ptr; break;
		case DT_RELASZ: relasz = dyn->d_un.d_val; break;
		case DT_RELAENT: relaent = dyn->d_un.d_val; break;
		}
	}
	if (!symtab || !strtab || relaent != sizeof(ElfW(Rela)))
		return;
	for (int pass = 0; pass < 2; pass++) {
		const ElfW(Rela) *r = (const ElfW(Rela) *)(pass ? rela : jmprel);
		size_t n = (pass ? relasz : pltsz) / sizeof(ElfW(Rela));
		if (!r || (!pass && pltrel != DT_RELA))
			continue;
		for (size_t i = 0; i < n; i++) {
			unsigned type = (unsigned)ELF64_R_TYPE(r[i].r_info);
			size_t si = ELF64_R_SYM(r[i].r_info);
			const ElfW(Sym) *sym = (const ElfW(Sym) *)symtab + si;
			if ((type != R_JUMP_SLOT && type != R_GLOB_DAT) || !si ||
			    sym->st_name >= strsz)
				continue;
			fn(arg, (const char *)strtab + sym->st_name,
			   (void **)(base + r[i].r_offset));
		}
	}
#else
	(void)info;
	(void)fn;
	(void)arg;
#endif
}

bool ss__got_write(const struct dl_phdr_info *info, void **slot, void *code)
{
	uintptr_t a = (uintptr_t)slot, page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t pg = a & ~(page - 1), lo = 0, hi = 0;
	bool relro;

	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_GNU_RELRO)
			continue;
		/* What the loader made read-only: whole pages only, the
		 * partial last page stays writable (glibc's _dl_protect_relro
		 * rounds both ends down). */
		lo = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
		hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz) & ~(page - 1);
	}
	relro = a >= lo && a < hi;
	/* Made writable for the one store and read-only again (plthook's
	 * way, RESEARCH.md 5.1). */
	if (relro && mprotect((void *)pg, page, PROT_READ | PROT_WRITE))
		return false;
	__atomic_store_n(slot, code, __ATOMIC_RELEASE);
	if (relro)
		mprotect((void *)pg, page, PROT_READ);
	return true;
}
