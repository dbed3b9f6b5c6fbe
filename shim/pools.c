/*
 * pools.c - any task pool, described in a file, rerouted onto the core
 * (SMOLSCALE_POOLS=FILE[:FILE...]; the language is in poolspec.h).
 *
 * For each described function the layer builds a handler with exactly
 * that signature from a libffi closure, and installs it by rewriting the
 * GOT entries that refer to the symbol (JUMP_SLOT: calls through the PLT;
 * GLOB_DAT: calls through the GOT with -fno-plt, and the function's
 * address taken in that object) in every loaded object, and in objects
 * loaded later by dlopen (RESEARCH.md 5.1-5.2, 7.10).  Then
 *   submit   spawns a task that runs fn(arg), counted against the pool;
 *   wait     returns once every task counted against that pool is done
 *            (work that those tasks submit to it is counted before they
 *            end, so the count reaches zero only when all is done), then
 *            calls the real wait, for work the real pool still has;
 *   destroy  waits the same way, then calls the real destroy.
 * The real pool is still created by its own code and keeps its threads;
 * they just have no work: a parked thread costs nothing but memory.
 *
 * What it cannot see, and leaves to the real pool: calls inside the
 * defining library itself when they do not go through its PLT
 * (-Bsymbolic, static functions), calls from an executable into a pool
 * compiled into it (said at start-up), and function pointers taken before
 * the rewrite.  Those run on the real pool, and wait and destroy still
 * wait for both kinds of work.
 *
 * Never break a program it cannot help: a file or line it cannot use is
 * reported (file, line, what was expected) and skipped; a closure libffi
 * cannot allocate (SELinux execmem, noexec temp dirs), a slot it cannot
 * write, a submit it cannot turn into a task (out of memory, no pool):
 * each leaves that call to the real function.
 *
 * libffi is loaded privately (dlopen RTLD_LOCAL) only when SMOLSCALE_POOLS
 * is set: a program that does not ask for this layer never maps it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ffi.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfsym.h"
#include "internal.h"
#include "poolspec.h"
#include "shim.h"

#if defined(__x86_64__)
#define R_JUMP_SLOT R_X86_64_JUMP_SLOT
#define R_GLOB_DAT R_X86_64_GLOB_DAT
#elif defined(__aarch64__)
#define R_JUMP_SLOT R_AARCH64_JUMP_SLOT
#define R_GLOB_DAT R_AARCH64_GLOB_DAT
#endif

#define MAX_FILE (1u << 20)

/* ------------------------------------------------------------ libffi */

static struct {
	ffi_status (*prep_cif)(ffi_cif *, ffi_abi, unsigned int, ffi_type *,
	                       ffi_type **);
	void (*call)(ffi_cif *, void (*)(void), void *, void **);
	void *(*closure_alloc)(size_t, void **);
	ffi_status (*prep_closure_loc)(ffi_closure *, ffi_cif *,
	                               void (*)(ffi_cif *, void *, void **, void *),
	                               void *, void *);
	ffi_type *t_void, *t_ptr, *t_float, *t_double;
	ffi_type *t_s[4], *t_u[4]; /* 1, 2, 4, 8 bytes */
} ffi;

static bool load_ffi(void)
{
	void *h = dlopen("libffi.so.8", RTLD_LAZY | RTLD_LOCAL);
	static const char *const s[4] = { "ffi_type_sint8", "ffi_type_sint16",
	                                  "ffi_type_sint32", "ffi_type_sint64" };
	static const char *const u[4] = { "ffi_type_uint8", "ffi_type_uint16",
	                                  "ffi_type_uint32", "ffi_type_uint64" };

	if (!h) {
		dprintf(STDERR_FILENO,
		        "smolscale: SMOLSCALE_POOLS: libffi.so.8 cannot be loaded (%s); no pool is rerouted\n",
		        dlerror());
		return false;
	}
	*(void **)&ffi.prep_cif = dlsym(h, "ffi_prep_cif");
	*(void **)&ffi.call = dlsym(h, "ffi_call");
	*(void **)&ffi.closure_alloc = dlsym(h, "ffi_closure_alloc");
	*(void **)&ffi.prep_closure_loc = dlsym(h, "ffi_prep_closure_loc");
	ffi.t_void = dlsym(h, "ffi_type_void");
	ffi.t_ptr = dlsym(h, "ffi_type_pointer");
	ffi.t_float = dlsym(h, "ffi_type_float");
	ffi.t_double = dlsym(h, "ffi_type_double");
	bool ok = ffi.prep_cif && ffi.call && ffi.closure_alloc &&
	          ffi.prep_closure_loc && ffi.t_void && ffi.t_ptr &&
	          ffi.t_float && ffi.t_double;
	for (int i = 0; i < 4; i++) {
		ffi.t_s[i] = dlsym(h, s[i]);
		ffi.t_u[i] = dlsym(h, u[i]);
		ok = ok && ffi.t_s[i] && ffi.t_u[i];
	}
	if (!ok)
		dprintf(STDERR_FILENO,
		        "smolscale: SMOLSCALE_POOLS: libffi.so.8 lacks the closure API; no pool is rerouted\n");
	return ok;
}

static ffi_type *ffi_of(const struct ss_ps_type *t)
{
	int i = t->size == 1 ? 0 : t->size == 2 ? 1 : t->size == 4 ? 2 : 3;

	switch (t->kind) {
	case SS_PS_VOID: return ffi.t_void;
	case SS_PS_SINT: return ffi.t_s[i];
	case SS_PS_UINT: return ffi.t_u[i];
	case SS_PS_FLOAT: return ffi.t_float;
	case SS_PS_DOUBLE: return ffi.t_double;
	default: return ffi.t_ptr;
	}
}

/* ------------------------------------------------------------ hooks */

/* One described function.  Made once and kept forever: a closure may be
 * called at any time after its slot was written (RESEARCH.md 5.4). */
struct hook {
	struct ss_ps_decl d;
	char where[300];           /* "FILE:LINE" for messages */
	ffi_cif cif;               /* the function's own signature */
	ffi_type *at[SS_PS_MAXPARAMS];
	ffi_cif fn_cif;            /* submit: the work function's */
	ffi_type *fn_at[1];
	void *code;                /* the closure's entry: what slots hold */
	/* The real function: set (release) under patch_lock before the
	 * first slot points at code; read acquire by the handler. */
	_Atomic(void *) real;
	_Atomic unsigned slots;    /* GOT entries rewritten */
	bool said;                 /* a "not found" note was given */
	struct hook *next;
};

static struct hook *hooks;     /* written at init only, then read-only */
static unsigned nhooks;
static pthread_mutex_t patch_lock = PTHREAD_MUTEX_INITIALIZER;

static _Atomic uint64_t n_passed; /* submits left to the real pool */

/* Set when the layer is active: the preload's dlopen (preload/dlopen.c)
 * then calls it in place of the real dlopen. */
void *(*ss__pools_dlopen_hook)(const char *, int, void *);
void *(*ss__dlopen_next)(const char *, int);

/* ------------------------------------------------------------ counting */

/*
 * The work counted against one pool (its @pool value).  Records are never
 * freed: a finishing task may still be waking waiters when the count hits
 * zero.  A destroyed pool's record is reused for another pool only when
 * nothing is pending and no finisher is inside (busy == 0).
 */
struct track {
	uint64_t key;
	bool live;                  /* under track_lock */
	_Atomic uint64_t pending;   /* tasks spawned and not yet finished */
	_Atomic uint32_t word;      /* futex: bumped when pending hits 0 */
	_Atomic uint32_t busy;      /* finishers between their two steps */
	_Atomic uint64_t items;     /* tasks run, for the stats */
	struct track *next;
};

#define NBUCKETS 256
static pthread_mutex_t track_lock = PTHREAD_MUTEX_INITIALIZER;
static struct track *buckets[NBUCKETS];

static struct track *track_get(uint64_t key, bool create)
{
	unsigned b = (unsigned)((key * 0x9e3779b97f4a7c15ull) >> 56);
	struct track *t, *dead = NULL;

	pthread_mutex_lock(&track_lock);
	for (t = buckets[b]; t; t = t->next) {
		if (t->live && t->key == key)
			break;
		if (!t->live && !dead && !atomic_load(&t->pending) &&
		    !atomic_load(&t->busy))
			dead = t;
	}
	if (!t && create) {
		if ((t = dead)) {
			t->key = key;
			t->live = true;
		} else if ((t = calloc(1, sizeof *t))) {
			t->key = key;
			t->live = true;
			t->next = buckets[b];
			buckets[b] = t;
		}
	}
	pthread_mutex_unlock(&track_lock);
	return t;
}

/* One unit of pending work of t is over. */
static void track_done(struct track *t)
{
	atomic_fetch_add(&t->busy, 1);
	if (atomic_fetch_sub(&t->pending, 1) == 1) {
		atomic_fetch_add(&t->word, 1);
		ss__futex_wake(&t->word, INT32_MAX);
	}
	atomic_fetch_sub(&t->busy, 1);
}

/* Until nothing counted against pool `key` is pending. */
static void track_wait(uint64_t key)
{
	struct track *t = track_get(key, false);

	if (!t || !atomic_load(&t->pending))
		return;
	ss_blocking_begin();
	for (;;) {
		uint32_t w = atomic_load(&t->word);
		if (!atomic_load(&t->pending))
			break;
		ss__futex_wait(&t->word, w, 0);
	}
	ss_blocking_end();
}

static void track_forget(uint64_t key)
{
	struct track *t = track_get(key, false);

	if (t) {
		pthread_mutex_lock(&track_lock);
		t->live = false;
		pthread_mutex_unlock(&track_lock);
	}
}

/* ------------------------------------------------------------ handlers */

struct item {
	struct hook *h;
	struct track *t;
	void (*fn)(void);
	uint64_t arg[2];            /* the @arg value, its own size */
};

static void *run_item(void *p)
{
	struct item *it = p;
	struct track *t = it->t;
	uint64_t rv[2];             /* >= sizeof(ffi_arg) and any return */
	void *av[1] = { it->arg };

	ss__set_entry((void *)it->fn);
	ffi.call(&it->h->fn_cif, it->fn, rv, av);
	free(it);
	atomic_fetch_add_explicit(&t->items, 1, memory_order_relaxed);
	track_done(t);
	return NULL;
}

static uint64_t pool_key(const struct hook *h, void **args)
{
	const struct ss_ps_type *t = &h->d.params[h->d.pool].type;
	uint64_t k = 0;

	memcpy(&k, args[h->d.pool], t->size); /* little-endian hosts */
	return k;
}

/* The value submit returns for work it took, widened as libffi wants a
 * closure's integral result. */
static void set_ret(const struct hook *h, void *ret)
{
	const struct ss_ps_type *t = &h->d.ret;

	if (t->kind == SS_PS_VOID)
		return;
	if (t->kind == SS_PS_SINT)
		*(ffi_sarg *)ret = (ffi_sarg)h->d.value;
	else
		*(ffi_arg *)ret = (ffi_arg)h->d.value &
		                  (t->size >= sizeof(ffi_arg) ? ~(ffi_arg)0
		                   : (((ffi_arg)1 << (8 * t->size)) - 1));
}

static bool submit(struct hook *h, void *ret, void **args)
{
	void (*fn)(void) = *(void (**)(void))args[h->d.fn];
	struct item *it;
	struct ss_task *task;
	struct track *t;

	if (!fn || ss__start() != 0 || !(it = malloc(sizeof *it)))
		return false;
	if (!(t = track_get(pool_key(h, args), true))) {
		free(it);
		return false;
	}
	it->h = h;
	it->t = t;
	it->fn = fn;
	memset(it->arg, 0, sizeof it->arg);
	memcpy(it->arg, args[h->d.arg], h->d.params[h->d.arg].type.size);
	atomic_fetch_add(&t->pending, 1);
	if (!(task = ss__task_new_internal(run_item, it))) {
		free(it);
		track_done(t);
		return false;
	}
	ss__task_submit(task);
	set_ret(h, ret);
	return true;
}

static void handler(ffi_cif *cif, void *ret, void **args, void *ud)
{
	struct hook *h = ud;
	void (*real)(void) = atomic_load_explicit(&h->real, memory_order_acquire);

	(void)cif;
	switch (h->d.role) {
	case SS_PS_SUBMIT:
		if (submit(h, ret, args))
			return;
		atomic_fetch_add_explicit(&n_passed, 1, memory_order_relaxed);
		break;
	case SS_PS_WAIT:
		track_wait(pool_key(h, args));
		break;
	case SS_PS_DESTROY:
		track_wait(pool_key(h, args));
		track_forget(pool_key(h, args));
		break;
	}
	ffi.call(&h->cif, real, ret, args);
}

/* ------------------------------------------------------------ the file */

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof buf - 2)
		n = sizeof buf - 2;
	buf[n++] = '\n';
	ss__log_write(buf, (size_t)n);
}

static struct hook *find_hook(const char *sym)
{
	for (struct hook *h = hooks; h; h = h->next)
		if (strcmp(h->d.symbol, sym) == 0)
			return h;
	return NULL;
}

/* Build a hook from a checked declaration; false with a note if libffi
 * will not. */
static bool make_hook(const struct ss_ps_decl *d, const char *where)
{
	struct hook *h;
	ffi_closure *cl;
	void *code;

	if (find_hook(d->symbol)) {
		note("smolscale: %s: %s is described twice; this line is skipped",
		     where, d->symbol);
		return false;
	}
	if (!(h = calloc(1, sizeof *h)))
		return false;
	h->d = *d;
	snprintf(h->where, sizeof h->where, "%s", where);
	for (unsigned i = 0; i < d->nparams; i++)
		h->at[i] = ffi_of(&d->params[i].type);
	if (ffi.prep_cif(&h->cif, FFI_DEFAULT_ABI, d->nparams, ffi_of(&d->ret),
	                 h->at) != FFI_OK)
		goto bad;
	if (d->role == SS_PS_SUBMIT) {
		const struct ss_ps_sig *sig = &d->params[d->fn].sig;
		h->fn_at[0] = ffi_of(&sig->params[0]);
		if (ffi.prep_cif(&h->fn_cif, FFI_DEFAULT_ABI, 1, ffi_of(&sig->ret),
		                 h->fn_at) != FFI_OK)
			goto bad;
	}
	cl = ffi.closure_alloc(sizeof(ffi_closure), &code);
	if (!cl) {
		note("smolscale: %s: libffi cannot allocate a closure for %s (executable memory refused?); it is left alone",
		     where, d->symbol);
		free(h);
		return false;
	}
	if (ffi.prep_closure_loc(cl, &h->cif, handler, h, code) != FFI_OK)
		goto bad; /* the closure is leaked: it was never reachable */
	h->code = code;
	h->next = hooks;
	hooks = h;
	nhooks++;
	return true;
bad:
	note("smolscale: %s: libffi cannot build a call for %s; it is left alone",
	     where, d->symbol);
	free(h);
	return false;
}

static void parse_file(const char *path)
{
	struct ss_ps_types *types = calloc(1, sizeof *types);
	struct ss_ps_decl d;
	char err[512], where[300], *buf = NULL;
	struct stat st;
	ssize_t got = 0;
	int fd, line = 0;

	if (!types)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > MAX_FILE || !(buf = malloc((size_t)st.st_size + 1))) {
		note("smolscale: SMOLSCALE_POOLS: %s: %s; no pool is rerouted from it",
		     path,
		     fd < 0 ? strerror(errno)
		     : (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) ? "not a regular file"
		     : st.st_size > MAX_FILE ? "larger than 1 MiB" : strerror(errno));
		goto out;
	}
	while (got < st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)(st.st_size - got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	buf[got] = '\0';
	unsigned before = nhooks, errors = 0;
	for (char *p = buf, *end = buf + got; p < end;) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		line++;
		snprintf(where, sizeof where, "%s:%d", path, line);
		switch (ss__ps_parse_line(p, len, types, &d, err, sizeof err)) {
		case SS_PS_ERROR:
			note("smolscale: %s: %s; this line is skipped", where, err);
			errors++;
			break;
		case SS_PS_DECL:
			make_hook(&d, where);
			break;
		}
		p += len + 1;
	}
	if (nhooks == before && !errors)
		note("smolscale: SMOLSCALE_POOLS: %s describes no function (want lines like 'submit int pool_submit(pool_t *@pool, void (*@fn)(void *), void *@arg)'); nothing is rerouted from it",
		     path);
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	free(types);
}

/* ------------------------------------------------------------ patching */

struct cand {
	void **slot;
	struct hook *h;
	uintptr_t relro_lo, relro_hi;
	bool in_exe;
};

struct scan {
	struct cand *v;
	size_t n, cap;
	const void *self;
};

static bool skip_object(const struct dl_phdr_info *info, const void *self)
{
	const char *n = info->dlpi_name ? info->dlpi_name : "";

	/* Our own library, the vDSO, the dynamic linker: none calls a pool,
	 * and the last two have dynamic sections of their own kind. */
	return (const void *)info->dlpi_addr == self ||
	       strstr(n, "linux-vdso") || strstr(n, "linux-gate") ||
	       strstr(n, "/ld-linux") || strstr(n, "/ld64.so");
}

static int scan_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct scan *sc = arg;
	const ElfW(Dyn) *dyn = NULL;
	uintptr_t base = info->dlpi_addr, relro_lo = 0, relro_hi = 0;
	uintptr_t symtab = 0, strtab = 0, jmprel = 0, rela = 0;
	size_t strsz = 0, pltsz = 0, relasz = 0, relaent = sizeof(ElfW(Rela));
	long pltrel = DT_RELA;
	long page = sysconf(_SC_PAGESIZE);

	(void)size;
	if (skip_object(info, sc->self))
		return 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_DYNAMIC)
			dyn = (const ElfW(Dyn) *)(base + ph->p_vaddr);
		else if (ph->p_type == PT_GNU_RELRO) {
			relro_lo = (base + ph->p_vaddr) & ~(uintptr_t)(page - 1);
			relro_hi = base + ph->p_vaddr + ph->p_memsz;
		}
	}
	if (!dyn)
		return 0;
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
		return 0;
	for (int pass = 0; pass < 2; pass++) {
		const ElfW(Rela) *r = (const ElfW(Rela) *)(pass ? rela : jmprel);
		size_t n = (pass ? relasz : pltsz) / sizeof(ElfW(Rela));
		if (!r || (!pass && pltrel != DT_RELA))
			continue;
		for (size_t i = 0; i < n; i++) {
			unsigned type = (unsigned)ELF64_R_TYPE(r[i].r_info);
			size_t si = ELF64_R_SYM(r[i].r_info);
			const ElfW(Sym) *sym;
			struct hook *h;
			if ((type != R_JUMP_SLOT && type != R_GLOB_DAT) || !si)
				continue;
			sym = (const ElfW(Sym) *)symtab + si;
			if (sym->st_name >= strsz ||
			    !(h = find_hook((const char *)strtab + sym->st_name)))
				continue;
			if (sc->n == sc->cap) {
				size_t cap = sc->cap ? sc->cap * 2 : 16;
				struct cand *v = realloc(sc->v, cap * sizeof *v);
				if (!v)
					return 1;
				sc->v = v;
				sc->cap = cap;
			}
			sc->v[sc->n++] = (struct cand){
				(void **)(base + r[i].r_offset), h, relro_lo, relro_hi,
				!info->dlpi_name || !info->dlpi_name[0],
			};
		}
	}
	return 0;
}

/* The definition that name binds to, for a slot not yet bound (lazy
 * binding): the global scope first, then each loaded object's own scope
 * (a library loaded RTLD_LOCAL). */
static void *find_definition(const char *name)
{
	void *p = dlsym(RTLD_DEFAULT, name);
	struct link_map *lm = NULL;
	void *main_h = dlopen(NULL, RTLD_LAZY | RTLD_NOLOAD);

	if (p || !main_h || dlinfo(main_h, RTLD_DI_LINKMAP, &lm) != 0)
		return p;
	for (; lm && !p; lm = lm->l_next) {
		void *h;
		if (!lm->l_name || !lm->l_name[0])
			continue;
		if ((h = dlopen(lm->l_name, RTLD_LAZY | RTLD_NOLOAD))) {
			p = dlsym(h, name);
			dlclose(h);
		}
	}
	return p;
}

/* What a GOT slot of h leads to: the function it holds, or, where the
 * slot still points at the PLT's lazy resolver, the definition. */
static void *slot_target(struct hook *h, void *cur)
{
	Dl_info di;

	if (dladdr(cur, &di) && di.dli_sname && di.dli_saddr == cur &&
	    strcmp(di.dli_sname, h->d.symbol) == 0)
		return cur;
	return find_definition(h->d.symbol);
}

static bool write_slot(const struct cand *c, void *code)
{
	uintptr_t a = (uintptr_t)c->slot;
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t pg = a & ~(uintptr_t)(page - 1);
	bool relro = a >= c->relro_lo && a < c->relro_hi;

	/* Full RELRO: read-only after relocation; made writable for the one
	 * store and read-only again (plthook's way, RESEARCH.md 5.1). */
	if (relro && mprotect((void *)pg, (size_t)page, PROT_READ | PROT_WRITE))
		return false;
	__atomic_store_n(c->slot, code, __ATOMIC_RELEASE);
	if (relro)
		mprotect((void *)pg, (size_t)page, PROT_READ);
	return true;
}

/* Rewrite every slot of every described symbol in every loaded object
 * that does not hold its hook yet.  Serialized: dlopen in two threads. */
static void patch_all(void)
{
	struct scan sc = { 0 };
	Dl_info self;

	if (!dladdr((void *)patch_all, &self))
		return;
	sc.self = self.dli_fbase;
	pthread_mutex_lock(&patch_lock);
	/* Collect first: dlsym and dladdr must not run inside
	 * dl_iterate_phdr (its lock, then the loader's: the reverse of a
	 * concurrent dlopen's order). */
	dl_iterate_phdr(scan_object, &sc);
	for (size_t i = 0; i < sc.n; i++) {
		struct cand *c = &sc.v[i];
		struct hook *h = c->h;
		void *cur = __atomic_load_n(c->slot, __ATOMIC_ACQUIRE), *target;
		void *real = atomic_load(&h->real);

		if (cur == h->code)
			continue;
		if (!(target = slot_target(h, cur))) {
			continue;
		}
		if (!real) {
			atomic_store_explicit(&h->real, target, memory_order_release);
		} else if (real != target) {
			if (!h->said)
				note("smolscale: %s: %s has two definitions in this process; the calls bound to the second are left alone",
				     h->where, h->d.symbol);
			h->said = true;
			continue;
		}
		if (write_slot(c, h->code))
			atomic_fetch_add(&h->slots, 1);
	}
	pthread_mutex_unlock(&patch_lock);
	free(sc.v);
}

/* ------------------------------------------------------------ dlopen */

/* The caller's link map (whose RUNPATH and $ORIGIN glibc would use). */
static struct link_map *caller_map(void *caller)
{
	struct link_map *lm = NULL;
	Dl_info di;

	if (!caller || !dladdr1(caller, &di, (void **)&lm, RTLD_DL_LINKMAP))
		return NULL;
	return lm;
}

static bool origin_of(struct link_map *lm, char *dir, size_t len)
{
	const char *n = lm->l_name && lm->l_name[0] ? lm->l_name : NULL;
	char exe[PATH_MAX];

	if (!n) {
		ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
		if (k <= 0)
			return false;
		exe[k] = '\0';
		n = exe;
	}
	const char *slash = strrchr(n, '/');
	if (!slash || (size_t)(slash - n) >= len)
		return false;
	memcpy(dir, n, (size_t)(slash - n));
	dir[slash - n] = '\0';
	return true;
}

/* Expand $ORIGIN (or ${ORIGIN}) in s into out; false for any other
 * dynamic string token, which is left to the loader. */
static bool expand(const char *s, size_t n, const char *origin, char *out,
                   size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n;) {
		size_t skip = 0;
		if (s[i] == '$') {
			if (n - i >= 7 && strncmp(s + i, "$ORIGIN", 7) == 0)
				skip = 7;
			else if (n - i >= 9 && strncmp(s + i, "${ORIGIN}", 9) == 0)
				skip = 9;
			else
				return false;
			size_t k = strlen(origin);
			if (o + k >= len)
				return false;
			memcpy(out + o, origin, k);
			o += k;
			i += skip;
			continue;
		}
		if (o + 1 >= len)
			return false;
		out[o++] = s[i++];
	}
	out[o] = '\0';
	return true;
}

static bool try_dirs(const char *list, const char *origin, const char *file,
                     char *path, size_t len)
{
	for (const char *p = list; p && *p;) {
		size_t n = strcspn(p, ":");
		char dir[PATH_MAX];
		if (n && origin && expand(p, n, origin, dir, sizeof dir) &&
		    (size_t)snprintf(path, len, "%s/%s", dir, file) < len &&
		    access(path, R_OK) == 0)
			return true;
		p += n + (p[n] == ':');
	}
	return false;
}

/*
 * Our dlopen is the caller as far as glibc can tell, so the caller's own
 * search path must be applied here: $ORIGIN in the name, and for a bare
 * name the caller's DT_RPATH (before LD_LIBRARY_PATH) or DT_RUNPATH
 * (after it) -- glibc's order (elf/dl-load.c _dl_map_object).  The main
 * executable's DT_RPATH glibc applies for any caller.  Returns whether
 * `path` holds the file to open instead of `file`.
 */
static bool like_caller(const char *file, void *caller, char *path, size_t len)
{
	struct link_map *lm;
	const ElfW(Dyn) *d;
	const char *strtab = NULL, *rpath = NULL, *runpath = NULL;
	uintptr_t rp = 0, rup = 0;
	char origin[PATH_MAX];
	void *h;

	if (!file || getauxval(AT_SECURE) || !(lm = caller_map(caller)) ||
	    !origin_of(lm, origin, sizeof origin))
		return false;
	if (strchr(file, '/'))
		return strstr(file, "$ORIGIN") &&
		       expand(file, strlen(file), origin, path, len);
	for (d = lm->l_ld; d && d->d_tag != DT_NULL; d++) {
		if (d->d_tag == DT_STRTAB)
			strtab = (const char *)d->d_un.d_ptr;
		else if (d->d_tag == DT_RPATH)
			rp = d->d_un.d_val + 1;
		else if (d->d_tag == DT_RUNPATH)
			rup = d->d_un.d_val + 1;
	}
	if (!strtab || (!rp && !rup))
		return false;
	rpath = rp ? strtab + rp - 1 : NULL;
	runpath = rup ? strtab + rup - 1 : NULL;
	/* Already loaded under that name: the loader finds it first. */
	if ((h = ss__dlopen_next(file, RTLD_LAZY | RTLD_NOLOAD))) {
		dlclose(h);
		return false;
	}
	if (!runpath)
		return try_dirs(rpath, origin, file, path, len);
	if (try_dirs(getenv("LD_LIBRARY_PATH"), "", file, path, len))
		return false; /* the loader finds it there too, first */
	return try_dirs(runpath, origin, file, path, len);
}

static void *pools_dlopen(const char *file, int mode, void *caller)
{
	char path[PATH_MAX];
	void *h;

	if (like_caller(file, caller, path, sizeof path))
		h = ss__dlopen_next(path, mode);
	else
		h = ss__dlopen_next(file, mode);
	if (h && !(mode & RTLD_NOLOAD))
		patch_all();
	return h;
}

/* ------------------------------------------------------------ start */

static void child_after_fork(void)
{
	/* The parent's tasks never run here (the core drops them): nothing
	 * is pending in the child. */
	pthread_mutex_init(&track_lock, NULL);
	pthread_mutex_init(&patch_lock, NULL);
	for (unsigned b = 0; b < NBUCKETS; b++)
		for (struct track *t = buckets[b]; t; t = t->next) {
			atomic_store(&t->pending, 0);
			atomic_store(&t->busy, 0);
		}
}

void ss__pools_stats(FILE *f)
{
	uint64_t items = 0;
	unsigned slots = 0;

	if (!hooks)
		return;
	for (struct hook *h = hooks; h; h = h->next)
		slots += atomic_load(&h->slots);
	pthread_mutex_lock(&track_lock);
	for (unsigned b = 0; b < NBUCKETS; b++)
		for (struct track *t = buckets[b]; t; t = t->next)
			items += atomic_load(&t->items);
	pthread_mutex_unlock(&track_lock);
	fprintf(f, " pool_hooks=%u pool_slots=%u pool_items=%llu pool_passed=%llu",
	        nhooks, slots, (unsigned long long)items,
	        (unsigned long long)atomic_load(&n_passed));
}

/* Hooks that found no slot: say why, where we can tell. */
static void report_unpatched(void)
{
	struct ss_elf *exe = NULL;
	bool tried = false;

	for (struct hook *h = hooks; h; h = h->next) {
		if (atomic_load(&h->slots))
			continue;
		if (!tried) {
			exe = ss__elf_open("/proc/self/exe");
			tried = true;
		}
		if (exe && ss__elf_defines(exe, h->d.symbol) == 1)
			note("smolscale: %s: %s is compiled into the executable itself, whose own calls to it do not go through the PLT or GOT; its pool is left alone",
			     h->where, h->d.symbol);
	}
	if (exe)
		ss__elf_close(exe);
}

void ss__pools_init(void)
{
	const char *env = secure_getenv("SMOLSCALE_POOLS");
	char *list, *save = NULL;

	if (!env || !*env)
		return;
#if !defined(R_JUMP_SLOT)
	note("smolscale: SMOLSCALE_POOLS: GOT rewriting is not implemented for this architecture; no pool is rerouted");
	return;
#else
	if (!load_ffi() || !(list = strdup(env)))
		return;
	for (char *f = strtok_r(list, ":", &save); f; f = strtok_r(NULL, ":", &save))
		parse_file(f);
	free(list);
	if (!hooks)
		return;
	ss__shim_stats_init();
	pthread_atfork(NULL, NULL, child_after_fork);
	patch_all();
	report_unpatched();
	ss__pools_dlopen_hook = pools_dlopen;
#endif
}
