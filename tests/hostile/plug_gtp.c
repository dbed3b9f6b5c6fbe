/*
 * plug_gtp.c - libhplug_gtp.so, a plugin (dlopened by dlhost.c, which does
 * not link GLib) whose work function lives in the plugin and runs on a
 * GThreadPool of its own: under the preload, on the preload's GThreadPool
 * layer.  plugin_run(n) pushes n items; each of the first n/4 pushes one
 * more item from inside itself; it waits (a counter, then
 * g_thread_pool_free(pool, FALSE, TRUE), which returns only when no item
 * runs any more) and returns a checksum.  The host dlclose()s the plugin
 * right after.
 */
#include <glib.h>
#include <stdint.h>

#include "plug.h"

static GThreadPool *pool;
static GMutex lock;
static GCond cond;
static long pending;
static uint64_t values[PLUG_MAX_ITEMS];

static void item(gpointer data, gpointer user_data)
{
	long i = (long)GPOINTER_TO_SIZE(data) - 1;
	int n = GPOINTER_TO_INT(user_data);

	values[i] = plug_value((uint64_t)i);
	if (i < n / 4) {
		g_mutex_lock(&lock);
		pending++;
		g_mutex_unlock(&lock);
		g_thread_pool_push(pool, GSIZE_TO_POINTER((gsize)(n + i) + 1), NULL);
	}
	g_mutex_lock(&lock);
	if (--pending == 0)
		g_cond_broadcast(&cond);
	g_mutex_unlock(&lock);
}

uint64_t plugin_run(int n)
{
	int total = n + n / 4;

	if (n <= 0 || total > PLUG_MAX_ITEMS)
		return 0;
	pool = g_thread_pool_new(item, GINT_TO_POINTER(n), 4, FALSE, NULL);
	if (!pool)
		return 0;
	pending = n;
	for (int i = 0; i < n; i++)
		g_thread_pool_push(pool, GSIZE_TO_POINTER((gsize)i + 1), NULL);
	g_mutex_lock(&lock);
	while (pending > 0)
		g_cond_wait(&cond, &lock);
	g_mutex_unlock(&lock);
	g_thread_pool_free(pool, FALSE, TRUE);
	pool = NULL;
	return plug_sum(values, total);
}
