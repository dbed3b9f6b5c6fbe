/*
 * tsan.c - ThreadSanitizer defaults for the test programs, compiled in only
 * by a SANITIZE=thread build (TSAN_OPTIONS still wins): no 1 s sleep at
 * every exit (each Check test and each envprobe run is a process that
 * exits), and children of a multi-threaded fork may start threads
 * (test_fork).
 */
#if defined(__SANITIZE_THREAD__)
const char *__tsan_default_options(void);

const char *__tsan_default_options(void)
{
	return "atexit_sleep_ms=0:die_after_fork=0";
}
#endif
