/*
 * gio_tasks.c - many small g_task_run_in_thread() jobs driven from a
 * GMainLoop, plain GIO, no smolscale headers.  GTask runs them on GIO's
 * own GThreadPool, so under libsmolscale-preload.so they land on the
 * smolscale scheduler; the stdout line must be the same either way.
 *
 * J jobs are started in waves: K at first, then one more from each
 * completion callback, so at most K are in flight.  A job's thread
 * function churns its index through W rounds of a 64-bit hash mix and,
 * with --io, also does g_file_query_info() on one of 16 small files in a
 * fresh temporary directory (removed at the end), folding the file's size
 * in; it returns the value with g_task_return_int().  The callback, in the
 * main loop, folds it into an order-independent checksum (a sum).
 *
 *   gio_tasks [--jobs J] [--inflight K] [--work W] [--io]
 *
 *   --jobs J      jobs in all (default 20000)
 *   --inflight K  most jobs in flight at once (default 64)
 *   --work W      mix rounds per job (default 500, about 2 µs)
 *   --io          add a g_file_query_info() to every job
 *
 * stdout: "gio_tasks jobs=J checksum=0x%016x", which depends only on J,
 *         W and --io.
 * stderr: wall seconds, jobs/s, CPU user+sys seconds (getrusage
 *         RUSAGE_SELF), CPU µs per job, voluntary/involuntary context
 *         switches.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#define NFILES	16

static gint opt_jobs = 20000;
static gint opt_inflight = 64;
static gint opt_work = 500;
static gboolean opt_io;

static GOptionEntry entries[] = {
	{ "jobs", 'j', 0, G_OPTION_ARG_INT, &opt_jobs,
	  "jobs in all (default 20000)", "J" },
	{ "inflight", 'k', 0, G_OPTION_ARG_INT, &opt_inflight,
	  "most jobs in flight at once (default 64)", "K" },
	{ "work", 'w', 0, G_OPTION_ARG_INT, &opt_work,
	  "mix rounds per job (default 500)", "W" },
	{ "io", 'i', 0, G_OPTION_ARG_NONE, &opt_io,
	  "add a g_file_query_info() to every job", NULL },
	{ NULL }
};

static GMainLoop *loop;
static GFile *files[NFILES];
static long started, completed;
static uint64_t checksum;
static GError *failure;

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static void job_thread(GTask *task, gpointer source, gpointer task_data,
		       GCancellable *cancellable)
{
	uint64_t idx = GPOINTER_TO_SIZE(task_data);
	uint64_t h = mix64(idx + 1);
	GError *err = NULL;

	(void)source;
	for (int i = 0; i < opt_work; i++)
		h = mix64(h + (uint64_t)i);
	if (opt_io) {
		GFileInfo *info = g_file_query_info(files[idx % NFILES],
				G_FILE_ATTRIBUTE_STANDARD_SIZE,
				G_FILE_QUERY_INFO_NONE, cancellable, &err);

		if (!info) {
			g_task_return_error(task, err);
			return;
		}
		h = mix64(h ^ (uint64_t)g_file_info_get_size(info));
		g_object_unref(info);
	}
	/* gssize: keep it non-negative and clear of G_MAXSSIZE games */
	g_task_return_int(task, (gssize)(h >> 2));
}

static void start_job(void);

static void job_done(GObject *source, GAsyncResult *res, gpointer data)
{
	GError *err = NULL;
	gssize v;

	(void)source;
	(void)data;
	v = g_task_propagate_int(G_TASK(res), &err);
	if (err) {
		if (!failure)
			failure = err;
		else
			g_error_free(err);
	} else {
		checksum += mix64((uint64_t)v);
	}
	completed++;
	if (started < opt_jobs && !failure)
		start_job();
	else if (completed == started)
		g_main_loop_quit(loop);
}

static void start_job(void)
{
	GTask *task = g_task_new(NULL, NULL, job_done, NULL);

	g_task_set_task_data(task, GSIZE_TO_POINTER((gsize)started), NULL);
	started++;
	g_task_run_in_thread(task, job_thread);
	g_object_unref(task);
}

static gboolean kick(gpointer data)
{
	(void)data;
	while (started < opt_jobs && started < opt_inflight)
		start_job();
	return G_SOURCE_REMOVE;
}

static char *make_files(void)
{
	GError *err = NULL;
	char *dir = g_dir_make_tmp("gio_tasks-XXXXXX", &err);

	if (!dir) {
		fprintf(stderr, "gio_tasks: g_dir_make_tmp: %s\n", err->message);
		exit(1);
	}
	for (int i = 0; i < NFILES; i++) {
		char name[32];
		char *path;
		char *buf = g_malloc0(i * 100 + 1);

		snprintf(name, sizeof(name), "f%02d", i);
		path = g_build_filename(dir, name, NULL);
		if (!g_file_set_contents(path, buf, i * 100, &err)) {
			fprintf(stderr, "gio_tasks: %s: %s\n", path,
				err->message);
			exit(1);
		}
		files[i] = g_file_new_for_path(path);
		g_free(path);
		g_free(buf);
	}
	return dir;
}

static void remove_files(char *dir)
{
	for (int i = 0; i < NFILES; i++) {
		char *path = g_file_get_path(files[i]);

		g_unlink(path);
		g_free(path);
		g_object_unref(files[i]);
	}
	g_rmdir(dir);
	g_free(dir);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double ru_cpu_s(const struct rusage *ru)
{
	return ru->ru_utime.tv_sec + ru->ru_stime.tv_sec +
	       (ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
	GOptionContext *ctx;
	GError *err = NULL;
	struct rusage ru0, ru1;
	char *dir = NULL;
	uint64_t t0, t1;

	ctx = g_option_context_new("- many g_task_run_in_thread() jobs");
	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
		fprintf(stderr, "gio_tasks: %s\n", err->message);
		return 2;
	}
	g_option_context_free(ctx);
	if (opt_jobs < 1 || opt_inflight < 1 || opt_work < 0) {
		fprintf(stderr, "gio_tasks: bad option value\n");
		return 2;
	}
	if (opt_io)
		dir = make_files();

	loop = g_main_loop_new(NULL, FALSE);
	g_idle_add(kick, NULL);
	getrusage(RUSAGE_SELF, &ru0);
	t0 = now_ns();
	g_main_loop_run(loop);
	t1 = now_ns();
	getrusage(RUSAGE_SELF, &ru1);
	g_main_loop_unref(loop);
	if (dir)
		remove_files(dir);

	if (failure) {
		fprintf(stderr, "gio_tasks: job failed: %s\n", failure->message);
		return 1;
	}
	printf("gio_tasks jobs=%d checksum=0x%016" PRIx64 "\n",
	       opt_jobs, checksum);
	fflush(stdout);

	double wall = (t1 - t0) / 1e9;
	double cpu = ru_cpu_s(&ru1) - ru_cpu_s(&ru0);

	fprintf(stderr,
		"gio_tasks: jobs=%d inflight=%d work=%d io=%d\n"
		"gio_tasks: wall %.3f s, %.0f jobs/s\n"
		"gio_tasks: cpu %.3f s (user %.3f sys %.3f), %.2f cpu us/job\n"
		"gio_tasks: ctxsw voluntary %ld involuntary %ld\n",
		opt_jobs, opt_inflight, opt_work, opt_io,
		wall, opt_jobs / wall,
		cpu,
		(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
			(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6,
		(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
			(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6,
		cpu * 1e6 / opt_jobs,
		ru1.ru_nvcsw - ru0.ru_nvcsw, ru1.ru_nivcsw - ru0.ru_nivcsw);
	return 0;
}
