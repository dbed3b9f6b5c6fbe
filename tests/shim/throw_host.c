/*
 * throw_host.c - the C host of the throw test (throw.sh).
 *
 *   throw_host LIBSSTHROW [N]
 *
 * A plain C program that links neither libstdc++ nor libgcc_s (throw.sh
 * checks its NEEDED entries), as GLib applications and most C programs:
 * the C++ runtime only arrives with a dlopen()ed library.  If a preloaded
 * library had libunwind.so.8 as a DT_NEEDED dependency, libunwind would
 * come before libgcc_s in the global scope, and the C++ runtime's
 * _Unwind_* references would bind to it (RESEARCH.md 4.10): every throw
 * ~25x slower.
 *
 * It first creates and joins one thread, so that under SMOLSCALE_PTHREAD=1
 * the preload's pool starts (and, with SMOLSCALE_STALL_REPORT=1, loads
 * libunwind privately), then dlopen()s LIBSSTHROW (libssthrow.so,
 * throw_lib.cc) with RTLD_NOW | RTLD_LOCAL, runs throw_many(N) (default
 * 100000) and prints, one per line:
 *
 *   seconds=S              the time of the N throw/catch
 *   libunwind_loaded=0|1   whether libunwind.so.8 is in the process
 *   unwind_from=FILE       the object that the C++ runtime's reference to
 *                          _Unwind_RaiseException (libstdc++'s, the one
 *                          __cxa_throw calls) is bound to: read from
 *                          libstdc++'s own GOT slot, so it is the binding
 *                          in use, whatever the scopes; "none" if not found
 *   resume_from=FILE       the same for libssthrow's _Unwind_Resume (its
 *                          cleanup landing pad)
 *   unwind_dlsym=FILE      dladdr of dlsym(handle, "_Unwind_RaiseException"):
 *                          informational only, since dlsym with a handle
 *                          searches that library's dependencies only and
 *                          never the global scope, where a preload's
 *                          dependencies are
 *
 * FILE is the basename of the object's path.  Exit 0, or 1 (with a FAIL
 * line) if something could not be loaded or the checksum is wrong.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if __WORDSIZE == 64
#define REL_SYM(info) ELF64_R_SYM(info)
#else
#define REL_SYM(info) ELF32_R_SYM(info)
#endif

static void *thread_main(void *arg)
{
	return (void *)((uintptr_t)arg + 1);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? slash + 1 : path;
}

/* The basename of the object that contains ADDR, or "none". */
static const char *object_of(const void *addr)
{
	Dl_info info;
	if (addr == NULL || dladdr(addr, &info) == 0 || info.dli_fname == NULL)
		return "none";
	return base_name(info.dli_fname);
}

/*
 * The value that the dynamic linker stored for the symbol NAME in the
 * relocations (GOT or PLT slots) of the object behind HANDLE, or NULL.
 * Called after that object's relocations are done (RTLD_NOW, and after
 * the throws for good measure).
 */
static void *bound_value(void *handle, const char *name)
{
	struct link_map *lm = NULL;
	const ElfW(Sym) *symtab = NULL;
	const char *strtab = NULL;
	ElfW(Addr) tabs[2] = {0, 0}; /* DT_JMPREL, then DT_RELA or DT_REL */
	size_t sizes[2] = {0, 0};
	int plt_is_rela = 1, rest_is_rela = 1;
	const ElfW(Dyn) *d;

	if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || lm == NULL)
		return NULL;
	/* glibc relocates the dynamic section's pointers in place on most
	 * targets, not on the few with a read-only one: both are handled. */
#define AT(p) ((ElfW(Addr))(p) < lm->l_addr ? (ElfW(Addr))(p) + lm->l_addr : (ElfW(Addr))(p))
	for (d = lm->l_ld; d->d_tag != DT_NULL; d++) {
		switch (d->d_tag) {
		case DT_SYMTAB: symtab = (const ElfW(Sym) *)AT(d->d_un.d_ptr); break;
		case DT_STRTAB: strtab = (const char *)AT(d->d_un.d_ptr); break;
		case DT_JMPREL: tabs[0] = AT(d->d_un.d_ptr); break;
		case DT_PLTRELSZ: sizes[0] = d->d_un.d_val; break;
		case DT_PLTREL: plt_is_rela = d->d_un.d_val == DT_RELA; break;
		case DT_RELA: tabs[1] = AT(d->d_un.d_ptr); rest_is_rela = 1; break;
		case DT_RELASZ: sizes[1] = d->d_un.d_val; break;
		case DT_REL: tabs[1] = AT(d->d_un.d_ptr); rest_is_rela = 0; break;
		case DT_RELSZ: sizes[1] = d->d_un.d_val; break;
		}
	}
#undef AT
	if (symtab == NULL || strtab == NULL)
		return NULL;
	for (int t = 0; t < 2; t++) {
		int rela = t == 0 ? plt_is_rela : rest_is_rela;
		size_t step = rela ? sizeof(ElfW(Rela)) : sizeof(ElfW(Rel));
		for (size_t off = 0; tabs[t] != 0 && off + step <= sizes[t]; off += step) {
			/* Rel is a prefix of Rela: r_offset, r_info */
			const ElfW(Rel) *r = (const ElfW(Rel) *)(tabs[t] + off);
			size_t sym = REL_SYM(r->r_info);
			if (sym == 0 || strcmp(strtab + symtab[sym].st_name, name) != 0)
				continue;
			return *(void *const *)(lm->l_addr + r->r_offset);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th;
	void *ret = NULL;
	long n = 100000;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s LIBSSTHROW [N]\n", argv[0]);
		return 2;
	}
	if (argc == 3)
		n = strtol(argv[2], NULL, 10);

	/* One thread: under SMOLSCALE_PTHREAD=1 it starts the pool. */
	if (pthread_create(&th, NULL, thread_main, (void *)41) != 0 ||
	    pthread_join(th, &ret) != 0 || (uintptr_t)ret != 42) {
		printf("FAIL: pthread_create/join\n");
		return 1;
	}

	void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		printf("FAIL: dlopen %s: %s\n", argv[1], dlerror());
		return 1;
	}
	double (*throw_many)(long) = (double (*)(long))dlsym(lib, "throw_many");
	long *checksum = (long *)dlsym(lib, "throw_many_checksum");
	void *cxa_throw = dlsym(lib, "__cxa_throw");
	if (throw_many == NULL || checksum == NULL || cxa_throw == NULL) {
		printf("FAIL: throw_many, throw_many_checksum or __cxa_throw not found\n");
		return 1;
	}

	double seconds = throw_many(n);

	long want = n; /* one destructor run a throw, plus the codes */
	for (long i = 0; i < n; i++)
		want += i & 7;
	if (*checksum != want) {
		printf("FAIL: checksum %ld, expected %ld\n", *checksum, want);
		return 1;
	}
	printf("seconds=%.6f\n", seconds);

	void *uw = dlopen("libunwind.so.8", RTLD_NOLOAD | RTLD_LAZY);
	printf("libunwind_loaded=%d\n", uw != NULL);
	if (uw != NULL)
		dlclose(uw);

	/* libstdc++: the object that defines __cxa_throw. */
	Dl_info info;
	void *cxx = NULL;
	if (dladdr(cxa_throw, &info) != 0 && info.dli_fname != NULL)
		cxx = dlopen(info.dli_fname, RTLD_NOLOAD | RTLD_LAZY);
	printf("unwind_from=%s\n",
	       cxx ? object_of(bound_value(cxx, "_Unwind_RaiseException")) : "none");
	printf("resume_from=%s\n", object_of(bound_value(lib, "_Unwind_Resume")));
	printf("unwind_dlsym=%s\n", object_of(dlsym(lib, "_Unwind_RaiseException")));
	if (cxx != NULL)
		dlclose(cxx);
	return 0;
}
