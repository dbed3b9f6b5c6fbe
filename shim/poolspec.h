/*
 * poolspec.h - the pool description language of SMOLSCALE_POOLS, parsed
 * into plain structs (poolspec.c).  Pure: no I/O, no globals, no libffi,
 * so that a unit test and a fuzzer can drive it directly.
 *
 * A description file is lines of:
 *
 *   # a comment, to the end of the line
 *   type NAME = C-TYPE
 *   ROLE RET SYMBOL(PARAMS) [= VALUE] [;]
 *
 * ROLE is submit, wait or destroy.  PARAMS are C parameter declarations,
 * the ones that matter marked with @:
 *   @pool  the pool: a pointer or an integer (every role)
 *   @fn    the work function: a function pointer taking one argument
 *          (submit)
 *   @arg   that argument (submit)
 * Any "NAME *" is a pointer, known NAME or not; a NAME used by value must
 * be a base type or declared with `type`.  VALUE (an integer, default 0)
 * is what a rerouted submit returns; wait and destroy return what the
 * real function returns.  Example (Pithikos' C-Thread-Pool):
 *
 *   type threadpool = void *
 *   submit  int  thpool_add_work(threadpool @pool, void (*@fn)(void *), void *@arg) = 0
 *   wait    void thpool_wait(threadpool @pool)
 *   destroy void thpool_destroy(threadpool @pool)
 */
#ifndef SS_POOLSPEC_H
#define SS_POOLSPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SS_PS_MAXPARAMS 16
#define SS_PS_MAXTYPES 64
#define SS_PS_NAME 128

/* A C type as the calling convention sees it. */
enum ss_ps_kind {
	SS_PS_VOID,
	SS_PS_SINT,   /* signed integer (bool and enums too), size 1..8 */
	SS_PS_UINT,   /* unsigned integer, size 1..8 */
	SS_PS_FLOAT,
	SS_PS_DOUBLE,
	SS_PS_PTR,    /* any data or function pointer */
};

struct ss_ps_type {
	uint8_t kind;  /* enum ss_ps_kind */
	uint8_t size;  /* bytes */
};

/* A function pointer's signature (one level: a function pointer among its
 * own parameters is just a pointer). */
struct ss_ps_sig {
	struct ss_ps_type ret;
	uint8_t nparams;
	struct ss_ps_type params[SS_PS_MAXPARAMS];
};

struct ss_ps_param {
	struct ss_ps_type type;
	bool is_fn;             /* a function pointer: sig holds its shape */
	struct ss_ps_sig sig;
};

enum ss_ps_role { SS_PS_SUBMIT = 1, SS_PS_WAIT, SS_PS_DESTROY };

/* One function of a pool. */
struct ss_ps_decl {
	int role;                   /* enum ss_ps_role */
	char symbol[SS_PS_NAME];
	struct ss_ps_type ret;
	uint8_t nparams;
	struct ss_ps_param params[SS_PS_MAXPARAMS];
	int pool, fn, arg;          /* parameter indexes, -1 if unmarked */
	long long value;            /* submit's return on success */
};

/* The `type` names declared so far in one file. */
struct ss_ps_types {
	unsigned n;
	struct {
		char name[SS_PS_NAME];
		struct ss_ps_param t;
	} v[SS_PS_MAXTYPES];
};

enum ss_ps_result {
	SS_PS_ERROR = -1,  /* err says what was expected */
	SS_PS_EMPTY = 0,   /* blank or a comment */
	SS_PS_TYPE = 1,    /* a type declaration, added to types */
	SS_PS_DECL = 2,    /* a function: *out filled and checked */
};

/* Parse one line (len bytes, no newline needed; NUL bytes are errors).
 * Returns an ss_ps_result; on SS_PS_ERROR err holds one sentence. */
int ss__ps_parse_line(const char *line, size_t len, struct ss_ps_types *types,
                      struct ss_ps_decl *out, char *err, size_t errlen);

#endif /* SS_POOLSPEC_H */
