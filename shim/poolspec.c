/*
 * poolspec.c - parse the pool description language (poolspec.h).
 *
 * A small recursive-descent parser for the subset of C declarations that
 * a pool's API needs: base types, typedef names, pointers, and function
 * pointers one level deep.  Every input is untrusted: tokens are bounded,
 * every array index is checked, and the first problem ends the line with
 * one sentence saying what was expected.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "poolspec.h"

enum tok_kind { T_END, T_IDENT, T_NUM, T_PUNCT, T_BAD };

struct lex {
	const char *p, *end;
	int kind;
	char text[SS_PS_NAME];
	char punct;
	long long num;
	char *err;
	size_t errlen;
	bool failed;
};

static void fail(struct lex *lx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(struct lex *lx, const char *fmt, ...)
{
	va_list ap;

	if (lx->failed)
		return;
	lx->failed = true;
	va_start(ap, fmt);
	vsnprintf(lx->err, lx->errlen, fmt, ap);
	va_end(ap);
}

/* The current token, for messages. */
static const char *tok_desc(const struct lex *lx, char *buf, size_t len)
{
	switch (lx->kind) {
	case T_END:
		return "the end of the line";
	case T_IDENT:
		snprintf(buf, len, "'%s'", lx->text);
		return buf;
	case T_NUM:
		snprintf(buf, len, "the number %lld", lx->num);
		return buf;
	case T_PUNCT:
		snprintf(buf, len, "'%c'", lx->punct);
		return buf;
	default:
		return "a character that is not part of a declaration";
	}
}

static void next(struct lex *lx)
{
	const char *p = lx->p;

	while (p < lx->end && (*p == ' ' || *p == '\t' || *p == '\r'))
		p++;
	if (p >= lx->end || *p == '#') {
		lx->kind = T_END;
		lx->p = lx->end;
		return;
	}
	if (isalpha((unsigned char)*p) || *p == '_') {
		size_t n = 0;
		while (p < lx->end && (isalnum((unsigned char)*p) || *p == '_')) {
			if (n + 1 >= sizeof lx->text) {
				lx->kind = T_BAD;
				fail(lx, "a name longer than %zu characters",
				     sizeof lx->text - 1);
				return;
			}
			lx->text[n++] = *p++;
		}
		lx->text[n] = '\0';
		lx->kind = T_IDENT;
		lx->p = p;
		return;
	}
	if (isdigit((unsigned char)*p) || (*p == '-' && p + 1 < lx->end &&
	                                   isdigit((unsigned char)p[1]))) {
		char buf[32], *e;
		size_t n = 0;
		while (p < lx->end && n + 1 < sizeof buf &&
		       (isalnum((unsigned char)*p) || *p == '-'))
			buf[n++] = *p++;
		buf[n] = '\0';
		if (p < lx->end && (isalnum((unsigned char)*p) || *p == '-')) {
			/* Not two tokens: "= 000...0001" is one number. */
			lx->kind = T_BAD;
			fail(lx, "a number longer than %zu characters", sizeof buf - 1);
			return;
		}
		errno = 0;
		lx->num = strtoll(buf, &e, 0);
		if (errno || *e) {
			lx->kind = T_BAD;
			fail(lx, "'%s' is not an integer", buf);
			return;
		}
		lx->kind = T_NUM;
		lx->p = p;
		return;
	}
	if (strchr("()*,@=;", *p) && *p) {
		lx->kind = T_PUNCT;
		lx->punct = *p;
		lx->p = p + 1;
		return;
	}
	if (*p == '.') {
		lx->kind = T_BAD;
		fail(lx, "a variadic function ('...'), which libffi closures cannot take");
		return;
	}
	lx->kind = T_BAD;
	if (isprint((unsigned char)*p))
		fail(lx, "the character '%c', which has no place in a declaration", *p);
	else
		fail(lx, "the byte 0x%02x, which has no place in a declaration",
		     (unsigned char)*p);
}

static bool is_punct(const struct lex *lx, char c)
{
	return lx->kind == T_PUNCT && lx->punct == c;
}

static bool is_word(const struct lex *lx, const char *w)
{
	return lx->kind == T_IDENT && strcmp(lx->text, w) == 0;
}

static void expect(struct lex *lx, char c, const char *what)
{
	char b[160];

	if (!is_punct(lx, c)) {
		fail(lx, "expected %s, found %s", what, tok_desc(lx, b, sizeof b));
		return;
	}
	next(lx);
}

/* ------------------------------------------------------------ types */

/* Specifier words of base types and what each adds. */
enum {
	W_VOID = 1, W_CHAR, W_SHORT, W_INT, W_LONG, W_SIGNED, W_UNSIGNED,
	W_FLOAT, W_DOUBLE, W_BOOL, W_QUAL,
};

static int spec_word(const char *s)
{
	static const struct {
		const char *w;
		int k;
	} words[] = {
		{ "void", W_VOID }, { "char", W_CHAR }, { "short", W_SHORT },
		{ "int", W_INT }, { "long", W_LONG }, { "signed", W_SIGNED },
		{ "unsigned", W_UNSIGNED }, { "float", W_FLOAT },
		{ "double", W_DOUBLE }, { "_Bool", W_BOOL }, { "bool", W_BOOL },
		{ "const", W_QUAL }, { "volatile", W_QUAL },
		{ "restrict", W_QUAL }, { "__restrict", W_QUAL },
	};

	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
		if (strcmp(s, words[i].w) == 0)
			return words[i].k;
	return 0;
}

/* Typedef names every C program has, by value. */
static bool std_name(const char *s, struct ss_ps_type *t)
{
	static const struct {
		const char *n;
		uint8_t kind, size;
	} names[] = {
		{ "size_t", SS_PS_UINT, sizeof(size_t) },
		{ "ssize_t", SS_PS_SINT, sizeof(long) },
		{ "ptrdiff_t", SS_PS_SINT, sizeof(ptrdiff_t) },
		{ "intptr_t", SS_PS_SINT, sizeof(intptr_t) },
		{ "uintptr_t", SS_PS_UINT, sizeof(uintptr_t) },
		{ "off_t", SS_PS_SINT, 8 },
		{ "pid_t", SS_PS_SINT, 4 },
		{ "int8_t", SS_PS_SINT, 1 },  { "uint8_t", SS_PS_UINT, 1 },
		{ "int16_t", SS_PS_SINT, 2 }, { "uint16_t", SS_PS_UINT, 2 },
		{ "int32_t", SS_PS_SINT, 4 }, { "uint32_t", SS_PS_UINT, 4 },
		{ "int64_t", SS_PS_SINT, 8 }, { "uint64_t", SS_PS_UINT, 8 },
	};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(s, names[i].n) == 0) {
			t->kind = names[i].kind;
			t->size = names[i].size;
			return true;
		}
	return false;
}

static const struct ss_ps_param *lookup(const struct ss_ps_types *types,
                                        const char *name)
{
	for (unsigned i = 0; i < types->n && i < SS_PS_MAXTYPES; i++)
		if (strcmp(types->v[i].name, name) == 0)
			return &types->v[i].t;
	return NULL;
}

/* What the specifiers said, before the declarator's stars. */
struct spec {
	bool any;               /* a type was named */
	int words[12];          /* base-type words seen */
	unsigned nwords;
	char named[SS_PS_NAME]; /* a typedef, struct or unknown name */
	bool tagged;            /* struct/union NAME */
	bool is_enum;
};

static void parse_spec(struct lex *lx, struct spec *s)
{
	memset(s, 0, sizeof *s);
	while (!lx->failed && lx->kind == T_IDENT) {
		int w = spec_word(lx->text);
		if (w == W_QUAL) {
			next(lx);
			continue;
		}
		if (w) {
			if (s->named[0] || s->nwords >= 12) {
				fail(lx, "'%s' after a type name", lx->text);
				return;
			}
			s->words[s->nwords++] = w;
			s->any = true;
			next(lx);
			continue;
		}
		if (is_word(lx, "struct") || is_word(lx, "union") ||
		    is_word(lx, "enum")) {
			bool e = is_word(lx, "enum");
			if (s->any) {
				fail(lx, "'%s' after a type", lx->text);
				return;
			}
			next(lx);
			if (lx->kind != T_IDENT) {
				char b[160];
				fail(lx, "expected a tag name after struct, union or enum, found %s",
				     tok_desc(lx, b, sizeof b));
				return;
			}
			snprintf(s->named, sizeof s->named, "%s", lx->text);
			s->tagged = !e;
			s->is_enum = e;
			s->any = true;
			next(lx);
			continue;
		}
		if (s->any)
			return; /* the declarator's name */
		snprintf(s->named, sizeof s->named, "%s", lx->text);
		s->any = true;
		next(lx);
	}
}

/* The by-value type of the specifiers (no stars).  Returns false and
 * fails with a message when there is none. */
static bool spec_type(struct lex *lx, const struct spec *s,
                      const struct ss_ps_types *types, struct ss_ps_param *out)
{
	int nlong = 0, nint = 0, sign = 0, base = 0;

	memset(out, 0, sizeof *out);
	if (!s->any) {
		char b[160];
		fail(lx, "expected a type, found %s", tok_desc(lx, b, sizeof b));
		return false;
	}
	if (s->named[0]) {
		const struct ss_ps_param *t;
		if (s->is_enum) {
			out->type = (struct ss_ps_type){ SS_PS_SINT, 4 };
			return true;
		}
		if (s->tagged) {
			fail(lx, "struct or union '%s' by value: only pointers to it can be passed here",
			     s->named);
			return false;
		}
		if ((t = lookup(types, s->named))) {
			*out = *t;
			return true;
		}
		if (std_name(s->named, &out->type))
			return true;
		fail(lx, "unknown type '%s' (declare it first, e.g. 'type %s = void *', or write '%s *' if it is a pointer)",
		     s->named, s->named, s->named);
		return false;
	}
	for (unsigned i = 0; i < s->nwords; i++) {
		switch (s->words[i]) {
		case W_LONG: nlong++; break;
		case W_INT: nint++; break;
		case W_SIGNED: sign = sign ? 3 : 1; break;
		case W_UNSIGNED: sign = sign ? 3 : 2; break;
		default:
			if (base) {
				fail(lx, "two base types in one declaration");
				return false;
			}
			base = s->words[i];
		}
	}
	if (sign == 3 || nint > 1 || nlong > 2 ||
	    (base && base != W_CHAR && base != W_SHORT && base != W_DOUBLE &&
	     (nlong || nint)) ||
	    (base == W_DOUBLE && (nint || sign)) ||
	    ((base == W_VOID || base == W_FLOAT || base == W_BOOL) && sign) ||
	    (base == W_CHAR && (nlong || nint)) || (base == W_SHORT && nlong)) {
		fail(lx, "not a valid combination of type words");
		return false;
	}
	switch (base) {
	case W_VOID:
		out->type = (struct ss_ps_type){ SS_PS_VOID, 0 };
		return true;
	case W_FLOAT:
		out->type = (struct ss_ps_type){ SS_PS_FLOAT, sizeof(float) };
		return true;
	case W_DOUBLE:
		if (nlong) {
			fail(lx, "long double is not supported");
			return false;
		}
		out->type = (struct ss_ps_type){ SS_PS_DOUBLE, sizeof(double) };
		return true;
	case W_BOOL:
		out->type = (struct ss_ps_type){ SS_PS_UINT, sizeof(_Bool) };
		return true;
	case W_CHAR:
		out->type = (struct ss_ps_type){ sign == 2 ? SS_PS_UINT : SS_PS_SINT, 1 };
		return true;
	case W_SHORT:
		out->type = (struct ss_ps_type){ sign == 2 ? SS_PS_UINT : SS_PS_SINT,
		                                 sizeof(short) };
		return true;
	}
	out->type = (struct ss_ps_type){ sign == 2 ? SS_PS_UINT : SS_PS_SINT,
	                                 (uint8_t)(nlong ? sizeof(long) : sizeof(int)) };
	return true;
}

static void parse_params(struct lex *lx, const struct ss_ps_types *types,
                         struct ss_ps_param *out, struct ss_ps_sig *sig,
                         uint8_t *n, int marks[3], bool nested);

/*
 * A declarator after the specifiers: stars, then a name (marked with @ or
 * not, optional), or "(*NAME)(PARAMS)" for a function pointer.  mark: the
 * @ name, or "".  A plain name is skipped: only marks matter.
 */
static void parse_declarator(struct lex *lx, const struct spec *s,
                             const struct ss_ps_types *types, bool nested,
                             struct ss_ps_param *out, char *mark, size_t mlen)
{
	unsigned stars = 0;
	bool known;

	mark[0] = '\0';
	while (!lx->failed && (is_punct(lx, '*') ||
	                       (lx->kind == T_IDENT &&
	                        spec_word(lx->text) == W_QUAL))) {
		stars += is_punct(lx, '*');
		next(lx);
	}
	if (is_punct(lx, '(')) {
		/* (*NAME)(PARAMS): a function pointer. */
		struct ss_ps_param ret;
		int m[3];
		next(lx);
		expect(lx, '*', "'*' of a function pointer, as in (*fn)(void *)");
		if (is_punct(lx, '@')) {
			next(lx);
			if (lx->kind != T_IDENT) {
				fail(lx, "expected a mark name after '@'");
				return;
			}
			snprintf(mark, mlen, "%s", lx->text);
			next(lx);
		} else if (lx->kind == T_IDENT) {
			next(lx);
		}
		expect(lx, ')', "')' closing (*name)");
		expect(lx, '(', "'(' opening the function pointer's parameters");
		if (lx->failed)
			return;
		if (nested) {
			/* A function pointer among a function pointer's
			 * parameters: a pointer, its shape unneeded. */
			int depth = 1;
			while (depth > 0 && !lx->failed && lx->kind != T_END) {
				if (is_punct(lx, '('))
					depth++;
				else if (is_punct(lx, ')'))
					depth--;
				next(lx);
			}
			if (depth > 0)
				fail(lx, "expected ')' closing the parameters");
			memset(out, 0, sizeof *out);
			out->type = (struct ss_ps_type){ SS_PS_PTR, sizeof(void *) };
			return;
		}
		memset(out, 0, sizeof *out);
		if (stars) {
			out->sig.ret = (struct ss_ps_type){ SS_PS_PTR, sizeof(void *) };
		} else {
			if (!spec_type(lx, s, types, &ret))
				return;
			out->sig.ret = ret.is_fn ? (struct ss_ps_type){ SS_PS_PTR, sizeof(void *) }
			                         : ret.type;
		}
		parse_params(lx, types, NULL, &out->sig, &out->sig.nparams, m, true);
		if (lx->failed)
			return;
		out->type = (struct ss_ps_type){ SS_PS_PTR, sizeof(void *) };
		out->is_fn = true;
		expect(lx, ')', "')' closing the function pointer's parameters");
		return;
	}
	known = true;
	if (stars) {
		memset(out, 0, sizeof *out);
		out->type = (struct ss_ps_type){ SS_PS_PTR, sizeof(void *) };
		/* Still check that the words make sense ("long char *"). */
		if (!s->named[0] && !spec_type(lx, s, types, &(struct ss_ps_param){ 0 }))
			return;
	} else {
		known = spec_type(lx, s, types, out);
	}
	if (!known)
		return;
	if (is_punct(lx, '@')) {
		next(lx);
		if (lx->kind != T_IDENT) {
			fail(lx, "expected a mark name after '@'");
			return;
		}
		snprintf(mark, mlen, "%s", lx->text);
		next(lx);
	} else if (lx->kind == T_IDENT) {
		next(lx); /* a parameter's name: not needed */
	}
}

/*
 * PARAMS up to (not including) the closing ')': "void", or declarations
 * separated by commas, into out[]; or, for a function pointer's
 * parameters (out NULL), their types into sig->params.
 */
static void parse_params(struct lex *lx, const struct ss_ps_types *types,
                         struct ss_ps_param *out, struct ss_ps_sig *sig,
                         uint8_t *n, int marks[3], bool nested)
{
	struct ss_ps_param tmp[SS_PS_MAXPARAMS];
	struct ss_ps_param *dst = out ? out : tmp;

	if (nested)
		memset(tmp, 0, sizeof tmp);

	*n = 0;
	marks[0] = marks[1] = marks[2] = -1;
	if (is_punct(lx, ')'))
		return;
	if (is_word(lx, "void")) {
		/* "(void)" alone, or a parameter of type void *... */
		struct lex save = *lx;
		next(lx);
		if (is_punct(lx, ')'))
			return;
		*lx = save;
	}
	for (;;) {
		struct spec s;
		char mark[SS_PS_NAME];

		if (*n >= SS_PS_MAXPARAMS) {
			fail(lx, "more than %d parameters", SS_PS_MAXPARAMS);
			return;
		}
		parse_spec(lx, &s);
		if (lx->failed)
			return;
		parse_declarator(lx, &s, types, nested, &dst[*n], mark,
		                 sizeof mark);
		if (lx->failed)
			return;
		if (dst[*n].type.kind == SS_PS_VOID) {
			fail(lx, "a parameter of type void");
			return;
		}
		if (mark[0]) {
			int k = strcmp(mark, "pool") == 0 ? 0
			        : strcmp(mark, "fn") == 0 ? 1
			        : strcmp(mark, "arg") == 0 ? 2 : -1;
			if (nested || k < 0) {
				fail(lx, nested ? "a mark '@%s' inside a function pointer's parameters"
				                : "unknown mark '@%s' (want @pool, @fn or @arg)",
				     mark);
				return;
			}
			if (marks[k] >= 0) {
				fail(lx, "'@%s' marks two parameters", mark);
				return;
			}
			marks[k] = *n;
		}
		(*n)++;
		if (is_punct(lx, ',')) {
			next(lx);
			continue;
		}
		if (!is_punct(lx, ')')) {
			char b[160];
			fail(lx, "expected ',' or ')' after a parameter, found %s",
			     tok_desc(lx, b, sizeof b));
		}
		break;
	}
	if (!out)
		for (unsigned i = 0; i < *n; i++)
			sig->params[i] = tmp[i].type;
}

/* ------------------------------------------------------------ lines */

static bool valid_pool(const struct ss_ps_type *t)
{
	return t->kind == SS_PS_PTR ||
	       ((t->kind == SS_PS_SINT || t->kind == SS_PS_UINT) && t->size <= 8);
}

static void check_decl(struct lex *lx, struct ss_ps_decl *d)
{
	const char *role = d->role == SS_PS_SUBMIT ? "submit"
	                   : d->role == SS_PS_WAIT ? "wait" : "destroy";

	if (d->pool < 0) {
		fail(lx, "%s %s: no parameter is marked @pool", role, d->symbol);
		return;
	}
	if (!valid_pool(&d->params[d->pool].type)) {
		fail(lx, "%s: @pool must be a pointer or an integer", d->symbol);
		return;
	}
	if (d->role != SS_PS_SUBMIT) {
		if (d->fn >= 0 || d->arg >= 0)
			fail(lx, "%s %s: @fn and @arg belong to submit only", role,
			     d->symbol);
		return;
	}
	if (d->fn < 0 || d->arg < 0) {
		fail(lx, "submit %s: mark the work function @fn and its argument @arg",
		     d->symbol);
		return;
	}
	const struct ss_ps_param *fn = &d->params[d->fn];
	if (!fn->is_fn) {
		fail(lx, "submit %s: @fn must be a function pointer, like void (*@fn)(void *) or a type declared so",
		     d->symbol);
		return;
	}
	if (fn->sig.nparams != 1) {
		fail(lx, "submit %s: the work function must take exactly one argument (@arg), not %u",
		     d->symbol, fn->sig.nparams);
		return;
	}
	if (fn->sig.params[0].size != d->params[d->arg].type.size ||
	    (fn->sig.params[0].kind == SS_PS_FLOAT) !=
	            (d->params[d->arg].type.kind == SS_PS_FLOAT) ||
	    (fn->sig.params[0].kind == SS_PS_DOUBLE) !=
	            (d->params[d->arg].type.kind == SS_PS_DOUBLE)) {
		fail(lx, "submit %s: @arg's type does not match the work function's parameter",
		     d->symbol);
		return;
	}
	if (d->ret.kind == SS_PS_PTR || d->ret.kind == SS_PS_FLOAT ||
	    d->ret.kind == SS_PS_DOUBLE) {
		fail(lx, "submit %s returns a %s: only void or an integer can be returned for work that smolscale runs",
		     d->symbol, d->ret.kind == SS_PS_PTR ? "pointer" : "floating-point value");
		return;
	}
}

int ss__ps_parse_line(const char *line, size_t len, struct ss_ps_types *types,
                      struct ss_ps_decl *out, char *err, size_t errlen)
{
	struct lex lx = { .p = line, .end = line + len, .err = err,
	                  .errlen = errlen };
	char b[160];

	if (errlen)
		err[0] = '\0';
	if (memchr(line, '\0', len)) {
		fail(&lx, "a NUL byte in the line");
		return SS_PS_ERROR;
	}
	next(&lx);
	if (lx.failed)
		return SS_PS_ERROR;
	if (lx.kind == T_END)
		return SS_PS_EMPTY;
	if (lx.kind != T_IDENT) {
		fail(&lx, "expected 'type', 'submit', 'wait' or 'destroy' at the start, found %s",
		     tok_desc(&lx, b, sizeof b));
		return SS_PS_ERROR;
	}
	if (is_word(&lx, "type")) {
		char name[SS_PS_NAME], mark[SS_PS_NAME];
		struct ss_ps_param t;
		struct spec s;

		next(&lx);
		if (lx.kind != T_IDENT) {
			fail(&lx, "expected a name after 'type', found %s",
			     tok_desc(&lx, b, sizeof b));
			return SS_PS_ERROR;
		}
		snprintf(name, sizeof name, "%s", lx.text);
		if (spec_word(name) || std_name(name, &t.type)) {
			fail(&lx, "'%s' is a built-in type name", name);
			return SS_PS_ERROR;
		}
		next(&lx);
		expect(&lx, '=', "'=' after the type's name");
		parse_spec(&lx, &s);
		if (!lx.failed)
			parse_declarator(&lx, &s, types, false, &t, mark,
			                 sizeof mark);
		if (!lx.failed && mark[0])
			fail(&lx, "a mark '@%s' in a type declaration", mark);
		if (!lx.failed && lx.kind != T_END)
			fail(&lx, "expected the end of the line after the type, found %s",
			     tok_desc(&lx, b, sizeof b));
		if (lx.failed)
			return SS_PS_ERROR;
		if (lookup(types, name)) {
			fail(&lx, "type '%s' is declared twice", name);
			return SS_PS_ERROR;
		}
		if (types->n >= SS_PS_MAXTYPES) {
			fail(&lx, "more than %d type declarations", SS_PS_MAXTYPES);
			return SS_PS_ERROR;
		}
		snprintf(types->v[types->n].name, SS_PS_NAME, "%s", name);
		types->v[types->n].t = t;
		types->n++;
		return SS_PS_TYPE;
	}

	memset(out, 0, sizeof *out);
	out->pool = out->fn = out->arg = -1;
	if (is_word(&lx, "submit"))
		out->role = SS_PS_SUBMIT;
	else if (is_word(&lx, "wait"))
		out->role = SS_PS_WAIT;
	else if (is_word(&lx, "destroy"))
		out->role = SS_PS_DESTROY;
	else {
		fail(&lx, "unknown role '%s' (want 'type', 'submit', 'wait' or 'destroy')",
		     lx.text);
		return SS_PS_ERROR;
	}
	next(&lx);

	/* RET SYMBOL(PARAMS) */
	struct spec s;
	struct ss_ps_param ret = { 0 };
	unsigned stars = 0;
	int marks[3];

	parse_spec(&lx, &s);
	if (lx.failed)
		return SS_PS_ERROR;
	while (is_punct(&lx, '*')) {
		stars++;
		next(&lx);
	}
	if (stars) {
		ret.type = (struct ss_ps_type){ SS_PS_PTR, sizeof(void *) };
	} else if (!s.named[0] && s.nwords == 0) {
		fail(&lx, "expected the return type and the function's name after the role");
		return SS_PS_ERROR;
	} else if (!spec_type(&lx, &s, types, &ret)) {
		return SS_PS_ERROR;
	}
	if (ret.is_fn) /* a typedef'd function pointer returned */
		ret.type = (struct ss_ps_type){ SS_PS_PTR, sizeof(void *) };
	out->ret = ret.type;
	if (lx.kind != T_IDENT) {
		fail(&lx, "expected the function's name after its return type, found %s",
		     tok_desc(&lx, b, sizeof b));
		return SS_PS_ERROR;
	}
	snprintf(out->symbol, sizeof out->symbol, "%s", lx.text);
	next(&lx);
	expect(&lx, '(', "'(' after the function's name");
	if (lx.failed)
		return SS_PS_ERROR;
	parse_params(&lx, types, out->params, NULL, &out->nparams, marks, false);
	if (lx.failed)
		return SS_PS_ERROR;
	expect(&lx, ')', "')' closing the parameters");
	if (lx.failed)
		return SS_PS_ERROR;
	out->pool = marks[0];
	out->fn = marks[1];
	out->arg = marks[2];
	if (is_punct(&lx, '=')) {
		next(&lx);
		if (lx.kind != T_NUM) {
			fail(&lx, "expected an integer after '=', found %s",
			     tok_desc(&lx, b, sizeof b));
			return SS_PS_ERROR;
		}
		if (out->role != SS_PS_SUBMIT) {
			fail(&lx, "'= VALUE' belongs to submit only: wait and destroy return what the real function returns");
			return SS_PS_ERROR;
		}
		out->value = lx.num;
		next(&lx);
	}
	if (is_punct(&lx, ';'))
		next(&lx);
	if (lx.kind != T_END) {
		fail(&lx, "expected the end of the line, found %s",
		     tok_desc(&lx, b, sizeof b));
		return SS_PS_ERROR;
	}
	check_decl(&lx, out);
	return lx.failed ? SS_PS_ERROR : SS_PS_DECL;
}
