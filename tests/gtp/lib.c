/*
 * lib.c - the test library behind gtp/contract-linked: the preload's
 * g_thread_pool_* names and nothing else (no pthread names, which a
 * sanitizer runtime calls before it is ready), over the same shim and
 * core.  Linked into a program ahead of GLib, its names win, as a
 * preloaded library's do.
 */
#include "../../preload/gthreadpool.c"
