/*
 * equal.c - pthread_equal, apart from entry.c: when optimizing, pthread.h
 * defines pthread_equal as an extern inline, so a file that includes it
 * cannot define the function too.  Handles of rerouted threads are
 * distinct values (shim/pthread.c), so equality is the same comparison.
 */
typedef unsigned long ss_pthread_t;

__attribute__((visibility("default"))) int pthread_equal(ss_pthread_t a,
                                                          ss_pthread_t b);

int pthread_equal(ss_pthread_t a, ss_pthread_t b)
{
	return a == b;
}
