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
#include "got.h"
#include "internal.h"
#include "poolspec.h"
#include "shim.h"

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
	void *h = ss__dlopen_next ? ss__dlopen_next("libffi.so.8", RTLD_LAZY | RTLD_LOCAL)
	                          : dlopen("libffi.so.8", RTLD_LAZY | RTLD_LOCAL);
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

/* One described function.  Made at start-up, then read-only but for its
 * list of bindings. */
struct hook {
	struct ss_ps_decl d;
	char where[300];           /* "FILE:LINE" for messages */
	ffi_cif cif;               /* the function's own signature */
	ffi_type *at[SS_PS_MAXPARAMS];
	ffi_cif fn_cif;            /* submit: the work function's */
	ffi_type *fn_at[1];
	/* submit: fn(arg) is called directly, without libffi, when its
	 * argument is pointer-sized and passed like one (x86-64, aarch64:
	 * an integer register; its result, if any, is ignored). */
	bool direct;
	/* Its bindings, newest first: pushed under patch_lock (release),
	 * walked lock-free (acquire). */
	_Atomic(struct binding *) bindings;
	struct hook *next;
};

/*
 * One closure for one definition of a hook's function: slots bound to
 * that definition get this closure, whose handler calls the definition
 * as the real function.  A library unloaded and loaded again elsewhere,
 * or two libraries that define the name, each get a binding of their
 * own.  Never freed: a thread may have read a slot just before it changed
 * (RESEARCH.md 5.2, 5.4).
 */
struct binding {
	struct hook *h;
	void (*real)(void);
	void *code;                /* the closure's entry: what slots hold */
	_Atomic unsigned slots;    /* GOT entries rewritten to it */
	struct binding *next;
};

static struct hook *hooks;     /* written at init only */
static unsigned nhooks;
static pthread_mutex_t patch_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int rescan;     /* a patch pass is wanted (see patch_all) */

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
	/* Written under track_lock; read without it by a submitter's cache
	 * check (relaxed: a stale match only costs the slow path, and a
	 * pool destroyed while work is still submitted to it is the
	 * program's own use-after-free). */
	_Atomic uint64_t key;
	_Atomic bool live;
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

	/* Submits to one pool come in runs: each thread remembers the
	 * last record it used, and checks it without the lock. */
	static __thread struct track *last;
	if (last && atomic_load_explicit(&last->live, memory_order_relaxed) &&
	    atomic_load_explicit(&last->key, memory_order_relaxed) == key)
		return last;
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
	if (t)
		last = t;
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
	if (it->h->direct) {
		void *a;
		memcpy(&a, it->arg, sizeof a);
		((void (*)(void *))it->fn)(a);
	} else
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
	uint64_t key = pool_key(h, args);
	struct item *it;
	struct ss_task *task;
	struct track *t;

	/* A NULL pool is the real function's to refuse, as it does. */
	if (!fn || (!key && h->d.params[h->d.pool].type.kind == SS_PS_PTR) ||
	    ss__start() != 0 || !(it = malloc(sizeof *it)))
		return false;
	if (!(t = track_get(key, true))) {
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
	struct binding *b = ud;
	struct hook *h = b->h;

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
	ffi.call(&h->cif, b->real, ret, args);
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
#if defined(__x86_64__) || defined(__aarch64__)
		h->direct = sizeof(void *) == 8 && sig->params[0].size == 8 &&
		            (sig->params[0].kind == SS_PS_PTR ||
		             sig->params[0].kind == SS_PS_SINT ||
		             sig->params[0].kind == SS_PS_UINT);
#endif
	}
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

/* The binding of h for the definition real, made if new (under
 * patch_lock, outside the loader's locks); NULL if libffi cannot. */
static struct binding *binding_for(struct hook *h, void (*real)(void))
{
	struct binding *b;
	ffi_closure *cl;
	void *code;

	for (b = atomic_load(&h->bindings); b; b = b->next)
		if (b->real == real)
			return b;
	if (!(b = calloc(1, sizeof *b)))
		return NULL;
	cl = ffi.closure_alloc(sizeof(ffi_closure), &code);
	if (!cl || ffi.prep_closure_loc(cl, &h->cif, handler, b, code) != FFI_OK) {
		note("smolscale: %s: libffi cannot make a closure for %s (executable memory refused?); it is left alone",
		     h->where, h->d.symbol);
		free(b); /* a closure never reachable is leaked, not freed */
		return NULL;
	}
	b->h = h;
	b->real = real;
	b->code = code;
	b->next = atomic_load(&h->bindings);
	atomic_store_explicit(&h->bindings, b, memory_order_release);
	return b;
}

static bool is_ours(struct hook *h, const void *p)
{
	for (struct binding *b = atomic_load_explicit(&h->bindings,
	                                              memory_order_acquire);
	     b; b = b->next)
		if (b->code == p)
			return true;
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
	/* O_NONBLOCK: a FIFO must not hang the program's start-up. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
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

/*
 * A pass runs in three steps, so that no loader function is ever called
 * while the loader's own lock is held by us, and no slot is touched
 * outside it:
 *   1. inside dl_iterate_phdr (which holds the loader's list lock, so no
 *      object it visits can be unmapped meanwhile): collect each GOT slot
 *      of a described symbol, with its object and its current value;
 *   2. outside: find what each slot binds to (dladdr, dlsym on the slot's
 *      own object: the loader's locks, taken in the loader's order) and
 *      make the bindings' closures;
 *   3. inside dl_iterate_phdr again: rewrite each slot whose object is
 *      still there and whose value has not changed.
 * Passes are serialized by patch_lock, taken with trylock: a dlopen from
 * a library's constructor runs while the loader's lock is held, and must
 * not wait for a pass that waits for that lock.  It asks for a pass
 * (rescan) and the pass in progress makes it before letting go.
 */
struct cand {
	struct hook *h;
	uintptr_t base;            /* the object's load bias */
	const char *obj;           /* its name ("" for the executable) */
	uintptr_t off;             /* the slot's offset from base */
	void *cur;                 /* the slot's value at step 1 */
	struct binding *b;         /* step 2's verdict; NULL: leave it */
};

struct scan {
	struct cand *v;
	size_t n, cap;
	const void *self;
	bool failed;               /* out of memory: the pass is void */
	unsigned long long adds;   /* the loader's load count, seen */
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

/* collect_slot's ss__got_each callback context: a pass over one object. */
struct collecting {
	struct scan *sc;
	const struct dl_phdr_info *info;
};

/* Step 1 for one slot of a described function. */
static void collect_slot(void *arg, const char *name, void **slot)
{
	struct collecting *cx = arg;
	struct scan *sc = cx->sc;
	const struct dl_phdr_info *info = cx->info;
	struct hook *h = find_hook(name);
	void *cur;
	char *obj;

	if (!h || sc->failed)
		return;
	cur = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
	if (!cur || is_ours(h, cur))
		return; /* unresolved weak (NULL): natively never called */
	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 16;
		struct cand *v = realloc(sc->v, cap * sizeof *v);
		if (!v) {
			sc->failed = true;
			return;
		}
		sc->v = v;
		sc->cap = cap;
	}
	if (!(obj = strdup(info->dlpi_name ? info->dlpi_name : ""))) {
		sc->failed = true;
		return;
	}
	sc->v[sc->n++] = (struct cand){ h, info->dlpi_addr, obj,
	                                (uintptr_t)slot - info->dlpi_addr, cur,
	                                NULL };
}

static int collect(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct scan *sc = arg;

	(void)size;
	sc->adds = info->dlpi_adds;
	if (!skip_object(info, sc->self))
		ss__got_each(info, collect_slot,
		             &(struct collecting){ sc, info });
	return 0;
}

/* Is p the start of a defined function (not a PLT stub: a lazy slot's
 * own, or an undefined symbol's canonical one in a non-PIE executable)?
 * The name may be an alias's. */
static bool is_definition(void *p)
{
	const ElfW(Sym) *sym = NULL;
	Dl_info di;

	return p && dladdr1(p, &di, (void **)&sym, RTLD_DL_SYMENT) && sym &&
	       sym->st_shndx != SHN_UNDEF && di.dli_saddr == p;
}

/* What an unbound (lazy) slot of object obj will bind to: its lookup
 * scope, i.e. the global scope, then the object's own dependencies (for
 * a library loaded RTLD_LOCAL).  No further: a weak reference the loader
 * would not bind must not be bound here. */
static void *lazy_target(const char *obj, const char *name)
{
	void *p = dlsym(RTLD_DEFAULT, name), *h;

	if (is_definition(p))
		return p;
	if (!obj[0] || !(h = ss__dlopen_next(obj, RTLD_LAZY | RTLD_NOLOAD)))
		return NULL;
	p = dlsym(h, name);
	dlclose(h);
	return is_definition(p) ? p : NULL;
}

static void decide(struct cand *c)
{
	void *target = c->cur;

	/* Not yet bound (lazy binding): the PLT's own stub. */
	if (!is_definition(target) &&
	    !(target = lazy_target(c->obj, c->h->d.symbol)))
		return;
	c->b = binding_for(c->h, (void (*)(void))target);
}

static int apply(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct scan *sc = arg;
	const char *name = info->dlpi_name ? info->dlpi_name : "";

	(void)size;
	for (size_t i = 0; i < sc->n; i++) {
		struct cand *c = &sc->v[i];
		void **slot = (void **)(c->base + c->off);
		if (!c->b || c->base != info->dlpi_addr || strcmp(c->obj, name))
			continue;
		/* The same object still (visited now, under the loader's
		 * list lock), and the slot as decided on. */
		if (__atomic_load_n(slot, __ATOMIC_ACQUIRE) != c->cur &&
		    __atomic_load_n(slot, __ATOMIC_ACQUIRE) != (void *)c->b->real)
			continue;
		if (ss__got_write(info, slot, c->b->code))
			atomic_fetch_add(&c->b->slots, 1);
	}
	return 0;
}

static unsigned long long last_adds;

static void patch_once(void)
{
	struct scan sc = { 0 };
	Dl_info self;

	if (!dladdr((void *)patch_once, &self))
		return;
	sc.self = self.dli_fbase;
	dl_iterate_phdr(collect, &sc);
	if (!sc.failed && sc.adds != last_adds) {
		for (size_t i = 0; i < sc.n; i++)
			decide(&sc.v[i]);
		dl_iterate_phdr(apply, &sc);
		last_adds = sc.adds;
	}
	for (size_t i = 0; i < sc.n; i++)
		free((void *)sc.v[i].obj);
	free(sc.v);
}

/* Rewrite the described symbols' slots in every loaded object that does
 * not hold a binding yet; only when objects were loaded since the last
 * pass. */
static void patch_all(void)
{
	atomic_store(&rescan, 1);
	while (atomic_load(&rescan)) {
		if (pthread_mutex_trylock(&patch_lock) != 0)
			return; /* its holder makes the pass asked for */
		while (atomic_exchange(&rescan, 0))
			patch_once();
		pthread_mutex_unlock(&patch_lock);
	}
}

/* ------------------------------------------------------------ dlopen */

/* Is path a loadable ELF object of this process's class and machine?
 * (The loader skips others in a search path and goes on.) */
static bool right_elf(const char *path)
{
	ElfW(Ehdr) eh;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	bool ok;

	if (fd < 0)
		return false;
	ok = read(fd, &eh, sizeof eh) == (ssize_t)sizeof eh &&
	     memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
	     eh.e_ident[EI_CLASS] == (sizeof(void *) == 8 ? ELFCLASS64 : ELFCLASS32);
#if defined(__x86_64__)
	ok = ok && eh.e_machine == EM_X86_64;
#elif defined(__aarch64__)
	ok = ok && eh.e_machine == EM_AARCH64;
#endif
	close(fd);
	return ok;
}

/*
 * Our dlopen is the caller as far as glibc can tell, so the caller's own
 * search path must be applied here.  glibc says what it is: dlinfo
 * RTLD_DI_SERINFO on the caller's handle lists the directories the
 * loader searches for that object's dependencies, in order (its and its
 * loaders' DT_RPATH, LD_LIBRARY_PATH, its DT_RUNPATH, then the system's),
 * dynamic string tokens expanded.  The first that holds a loadable `file`
 * wins, as in the loader, but only up to the system directories: those,
 * with ld.so.cache, are the real dlopen's own search.  $ORIGIN in a name
 * with a slash is the caller's directory.  Returns whether `path` holds
 * the file to open instead of `file`.
 */
static bool like_caller(const char *file, void *caller, char *path, size_t len)
{
	struct link_map *lm = NULL;
	Dl_serinfo size, *si = NULL;
	Dl_info di;
	void *h;
	bool found = false;

	Dl_info self;

	if (!file || getauxval(AT_SECURE) || !caller ||
	    !dladdr1(caller, &di, (void **)&lm, RTLD_DL_LINKMAP) || !lm ||
	    !dladdr((void *)like_caller, &self) || di.dli_fbase == self.dli_fbase)
		return false;
	if (strchr(file, '/')) {
		/* $ORIGIN in a path: the caller's directory. */
		const char *o = strstr(file, "$ORIGIN");
		char exe[PATH_MAX];
		const char *n = lm->l_name && lm->l_name[0] ? lm->l_name : NULL;
		if (!o || o != file)
			return false;
		if (!n) {
			ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
			if (k <= 0)
				return false;
			exe[k] = '\0';
			n = exe;
		}
		const char *slash = strrchr(n, '/');
		return slash &&
		       (size_t)snprintf(path, len, "%.*s%s", (int)(slash - n), n,
		                        file + 7) < len;
	}
	/* Already loaded under that name: the loader finds it first. */
	if ((h = ss__dlopen_next(file, RTLD_LAZY | RTLD_NOLOAD))) {
		dlclose(h);
		return false;
	}
	h = lm->l_name && lm->l_name[0]
	            ? ss__dlopen_next(lm->l_name, RTLD_LAZY | RTLD_NOLOAD)
	            : ss__dlopen_next(NULL, RTLD_LAZY);
	if (!h)
		return false;
	if (dlinfo(h, RTLD_DI_SERINFOSIZE, &size) == 0 &&
	    (si = malloc(size.dls_size))) {
		*si = size;
		if (dlinfo(h, RTLD_DI_SERINFO, si) == 0)
			for (unsigned i = 0; i < si->dls_cnt && !found; i++) {
				const Dl_serpath *sp = &si->dls_serpath[i];
				if (sp->dls_flags & (LA_SER_CONFIG | LA_SER_DEFAULT))
					break;
				found = (size_t)snprintf(path, len, "%s/%s",
				                         sp->dls_name, file) < len &&
				        right_elf(path);
			}
		free(si);
	}
	dlclose(h);
	return found;
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
		for (struct binding *b = atomic_load(&h->bindings); b; b = b->next)
			slots += atomic_load(&b->slots);
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
		bool any = false;
		for (struct binding *b = atomic_load(&h->bindings); b; b = b->next)
			any |= atomic_load(&b->slots) > 0;
		if (any)
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
#if !defined(SS_GOT_SUPPORTED)
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
