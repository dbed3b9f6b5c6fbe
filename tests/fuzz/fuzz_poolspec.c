/*
 * fuzz_poolspec.c - libFuzzer target for the pool description language
 * (shim/poolspec.c, SMOLSCALE_POOLS files).
 *
 * The input is a whole description file, split into lines at '\n' as
 * shim/pools.c does, every line parsed into one shared struct
 * ss_ps_types.  Each line is handed over in a heap block of exactly its
 * length (no NUL after it), so that AddressSanitizer sees any read past
 * the line's end.  Besides crashes, leaks and undefined behaviour, it
 * checks what the parser promises (poolspec.h):
 *   - the result is one of SS_PS_ERROR, _EMPTY, _TYPE, _DECL;
 *   - an error comes with a non-empty, NUL-terminated sentence, success
 *     with an empty one; a smaller buffer gets a prefix of the same
 *     sentence (the same line parsed again, into a copy of the types);
 *   - only a type declaration adds one type, with a proper name;
 *   - a declaration has a role, a symbol, at most SS_PS_MAXPARAMS
 *     parameters of sane kinds and sizes, @pool in range, @fn and @arg in
 *     range for submit only (a function pointer taking one argument of
 *     @arg's size), and a return value only for submit.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "poolspec.h"

#define CHECK(c)                                                              \
	do {                                                                  \
		if (!(c)) {                                                   \
			fprintf(stderr, "fuzz_poolspec: %s:%d: check failed: %s\n", \
			        __FILE__, __LINE__, #c);                      \
			abort();                                              \
		}                                                             \
	} while (0)

static void check_type(const struct ss_ps_type *t, int allow_void)
{
	switch (t->kind) {
	case SS_PS_VOID:
		CHECK(allow_void && t->size == 0);
		break;
	case SS_PS_SINT:
	case SS_PS_UINT:
		CHECK(t->size == 1 || t->size == 2 || t->size == 4 || t->size == 8);
		break;
	case SS_PS_FLOAT:
		CHECK(t->size == sizeof(float));
		break;
	case SS_PS_DOUBLE:
		CHECK(t->size == sizeof(double));
		break;
	case SS_PS_PTR:
		CHECK(t->size == sizeof(void *));
		break;
	default:
		CHECK(!"a kind out of the enum");
	}
}

static void check_param(const struct ss_ps_param *p, int allow_void)
{
	check_type(&p->type, allow_void);
	if (p->is_fn) {
		CHECK(p->type.kind == SS_PS_PTR);
		CHECK(p->sig.nparams <= SS_PS_MAXPARAMS);
		check_type(&p->sig.ret, 1);
		for (unsigned i = 0; i < p->sig.nparams; i++)
			check_type(&p->sig.params[i], 0);
	}
}

static int is_ident(const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	if (n == 0 || n == max)
		return 0;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') ||
	      s[0] == '_'))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	return 1;
}

static void check_decl(const struct ss_ps_decl *d)
{
	CHECK(d->role == SS_PS_SUBMIT || d->role == SS_PS_WAIT ||
	      d->role == SS_PS_DESTROY);
	CHECK(is_ident(d->symbol, sizeof d->symbol));
	CHECK(d->nparams <= SS_PS_MAXPARAMS);
	check_type(&d->ret, 1);
	for (unsigned i = 0; i < d->nparams; i++)
		check_param(&d->params[i], 0);
	CHECK(d->pool >= 0 && d->pool < d->nparams);
	CHECK(d->params[d->pool].type.kind == SS_PS_PTR ||
	      d->params[d->pool].type.kind == SS_PS_SINT ||
	      d->params[d->pool].type.kind == SS_PS_UINT);
	if (d->role != SS_PS_SUBMIT) {
		CHECK(d->fn == -1 && d->arg == -1);
		CHECK(d->value == 0);
		return;
	}
	CHECK(d->fn >= 0 && d->fn < d->nparams);
	CHECK(d->arg >= 0 && d->arg < d->nparams);
	CHECK(d->pool != d->fn && d->pool != d->arg && d->fn != d->arg);
	CHECK(d->params[d->fn].is_fn);
	CHECK(d->params[d->fn].sig.nparams == 1);
	CHECK(d->params[d->fn].sig.params[0].size == d->params[d->arg].type.size);
	CHECK(d->ret.kind == SS_PS_VOID || d->ret.kind == SS_PS_SINT ||
	      d->ret.kind == SS_PS_UINT);
}

/* Type I of *t: a proper name, declared once, and a sane type. */
static void check_type_entry(const struct ss_ps_types *t, unsigned i)
{
	CHECK(is_ident(t->v[i].name, sizeof t->v[i].name));
	check_param(&t->v[i].t, 1);
	for (unsigned j = 0; j < i; j++)
		CHECK(strcmp(t->v[i].name, t->v[j].name) != 0);
}

static void check_types(const struct ss_ps_types *t)
{
	CHECK(t->n <= SS_PS_MAXTYPES);
	for (unsigned i = 0; i < t->n; i++)
		check_type_entry(t, i);
}

/* One line: parsed into a copy of *types with a short error buffer, then
 * into *types with a full one; the two must agree. */
static void one_line(const uint8_t *p, size_t len, struct ss_ps_types *types,
                     struct ss_ps_types *scratch)
{
	static struct ss_ps_decl d, d2;
	char *line = malloc(len ? len : 1);
	size_t shortlen = len % 48;
	char *err_short = malloc(shortlen ? shortlen : 1);
	char err[512];
	unsigned before = types->n;
	int r, r2;

	CHECK(line && err_short);
	memcpy(line, p, len);

	memcpy(scratch, types, sizeof *types);
	memset(&d2, 0xa5, sizeof d2);
	r2 = ss__ps_parse_line(line, len, scratch, &d2, err_short, shortlen);

	memset(&d, 0x5a, sizeof d);
	memset(err, 'x', sizeof err);
	r = ss__ps_parse_line(line, len, types, &d, err, sizeof err);

	CHECK(r == SS_PS_ERROR || r == SS_PS_EMPTY || r == SS_PS_TYPE ||
	      r == SS_PS_DECL);
	CHECK(r == r2);
	CHECK(memchr(err, '\0', sizeof err) != NULL);
	if (shortlen) {
		CHECK(memchr(err_short, '\0', shortlen) != NULL);
		CHECK(strncmp(err, err_short, strlen(err_short)) == 0);
		CHECK(strlen(err_short) == (strlen(err) < shortlen - 1 ? strlen(err)
		                                                     : shortlen - 1));
	}
	if (r == SS_PS_ERROR)
		CHECK(err[0] != '\0' && strlen(err) < sizeof err - 1);
	else
		CHECK(err[0] == '\0');
	CHECK(types->n == before + (r == SS_PS_TYPE));
	if (r == SS_PS_TYPE)
		check_type_entry(types, types->n - 1);
	if (r == SS_PS_DECL) {
		check_decl(&d);
		CHECK(memcmp(&d, &d2, sizeof d) == 0 ||
		      /* padding aside: compare what matters */
		      (d.role == d2.role && strcmp(d.symbol, d2.symbol) == 0 &&
		       d.nparams == d2.nparams && d.pool == d2.pool &&
		       d.fn == d2.fn && d.arg == d2.arg && d.value == d2.value));
	}
	free(line);
	free(err_short);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ss_ps_types *types = calloc(1, sizeof *types);
	struct ss_ps_types *scratch = malloc(sizeof *scratch);
	const uint8_t *p = data, *end = data + size;

	CHECK(types && scratch);
	/* As shim/pools.c's parse_file: a last line without '\n' counts. */
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		one_line(p, len, types, scratch);
		p += len + 1;
	}
	check_types(types);
	free(types);
	free(scratch);
	return 0;
}
