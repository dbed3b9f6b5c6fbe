/*
 * gio_copy.c - a real, all-async GIO program for the GThreadPool
 * integration test, plain GIO, no smolscale headers.  Everything is
 * driven from one GMainLoop; GIO does the blocking work in its GTask
 * thread pool (g_task_run_in_thread() inside libgio), which is what
 * libsmolscale-preload.so reroutes.
 *
 *   gio_copy SRC DST
 *
 * 1. g_file_make_directory_async(DST) (an existing DST is fine);
 * 2. enumerate SRC with g_file_enumerate_children_async() and
 *    g_file_enumerator_next_files_async() in batches of 64, not following
 *    symlinks; every regular file is copied to DST with g_file_copy_async()
 *    (G_FILE_COPY_OVERWRITE), at most 32 copies in flight;
 * 3. once all are copied, enumerate DST the same way and, for each file
 *    that was copied, read it back with g_file_load_contents_async() (at
 *    most 32 in flight), check its size against both enumerations, and
 *    compute its POSIX cksum CRC.
 *
 * stdout: one line "NAME SIZE CRC" per copied file, sorted by name
 *         (strcmp, i.e. LC_ALL=C order), CRC being exactly what cksum(1)
 *         prints for the file; then "files=N bytes=M".
 * stderr: wall seconds, CPU user+sys seconds, context switches; or
 *         "gio_copy: WHAT PATH: MESSAGE" on any GError.
 * exit:   0 on success, 1 on any GError or mismatch, 2 on bad usage.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <gio/gio.h>

#define BATCH		64
#define MAX_INFLIGHT	32
#define ATTRS		G_FILE_ATTRIBUTE_STANDARD_NAME "," \
			G_FILE_ATTRIBUTE_STANDARD_TYPE "," \
			G_FILE_ATTRIBUTE_STANDARD_SIZE

struct entry {
	char *name;
	goffset src_size;	/* from the SRC enumeration */
	goffset dst_size;	/* from the DST enumeration, -1 until seen */
	uint32_t crc;
};

static GMainLoop *loop;
static GCancellable *cancel;
static GFile *src_dir, *dst_dir;
static int status;

static GHashTable *entries;	/* name -> struct entry, owns both */
static GQueue to_copy = G_QUEUE_INIT;	/* struct entry *, borrowed */
static GQueue to_hash = G_QUEUE_INIT;
static GPtrArray *listed;	/* entries seen in DST */
static int inflight;
static gboolean src_listed, dst_started, dst_listed;
static long hashed;

static uint32_t crc_table[256];

/* POSIX cksum: CRC-32 poly 0x04C11DB7, MSB first, length appended. */
static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i << 24;

		for (int k = 0; k < 8; k++)
			c = c & 0x80000000u ? (c << 1) ^ 0x04C11DB7u : c << 1;
		crc_table[i] = c;
	}
}

static uint32_t cksum(const unsigned char *p, size_t len)
{
	uint32_t crc = 0;

	for (size_t i = 0; i < len; i++)
		crc = (crc << 8) ^ crc_table[(crc >> 24) ^ p[i]];
	for (size_t n = len; n; n >>= 8)
		crc = (crc << 8) ^ crc_table[(crc >> 24) ^ (n & 0xff)];
	return ~crc;
}

static void fail(const char *what, GFile *file, const char *msg)
{
	char *path = file ? g_file_get_parse_name(file) : NULL;

	if (status == 0)
		fprintf(stderr, "gio_copy: %s%s%s: %s\n", what,
			path ? " " : "", path ? path : "", msg);
	g_free(path);
	status = 1;
	g_cancellable_cancel(cancel);
	g_main_loop_quit(loop);
}

static void fail_err(const char *what, GFile *file, GError *err)
{
	fail(what, file, err->message);
	g_error_free(err);
}

/* ------------------------------------------------------------------ */
/* phase 3: read back and hash what landed in DST */

static int by_name(gconstpointer a, gconstpointer b)
{
	const struct entry *x = *(const struct entry *const *)a;
	const struct entry *y = *(const struct entry *const *)b;

	return strcmp(x->name, y->name);
}

static void finish(void)
{
	guint64 bytes = 0;

	g_ptr_array_sort(listed, by_name);
	for (guint i = 0; i < listed->len; i++) {
		struct entry *e = g_ptr_array_index(listed, i);

		printf("%s %" G_GINT64_FORMAT " %" PRIu32 "\n",
		       e->name, (gint64)e->dst_size, e->crc);
		bytes += (guint64)e->dst_size;
	}
	printf("files=%u bytes=%" G_GUINT64_FORMAT "\n", listed->len, bytes);
	g_main_loop_quit(loop);
}

static void hash_pump(void);

static void loaded(GObject *obj, GAsyncResult *res, gpointer data)
{
	GFile *file = G_FILE(obj);
	struct entry *e = data;
	GError *err = NULL;
	char *buf;
	gsize len;

	inflight--;
	if (status)
		return;
	if (!g_file_load_contents_finish(file, res, &buf, &len, NULL, &err)) {
		fail_err("load", file, err);
		return;
	}
	if ((goffset)len != e->dst_size || (goffset)len != e->src_size) {
		char *msg = g_strdup_printf("size mismatch: read %zu, "
				"DST listed %" G_GINT64_FORMAT ", SRC listed %"
				G_GINT64_FORMAT, len, (gint64)e->dst_size,
				(gint64)e->src_size);

		fail("check", file, msg);
		g_free(msg);
		g_free(buf);
		return;
	}
	e->crc = cksum((const unsigned char *)buf, len);
	g_free(buf);
	hashed++;
	hash_pump();
}

static void hash_pump(void)
{
	while (inflight < MAX_INFLIGHT && !g_queue_is_empty(&to_hash)) {
		struct entry *e = g_queue_pop_head(&to_hash);
		GFile *f = g_file_get_child(dst_dir, e->name);

		inflight++;
		g_file_load_contents_async(f, cancel, loaded, e);
		g_object_unref(f);
	}
	if (dst_listed && inflight == 0 && hashed == (long)listed->len)
		finish();
}

/* ------------------------------------------------------------------ */
/* enumerating a directory in batches: shared by SRC and DST */

struct lister {
	GFile *dir;
	void (*each)(GFileInfo *info);
	void (*done)(void);
};

static void list_closed(GObject *obj, GAsyncResult *res, gpointer data)
{
	struct lister *l = data;
	GError *err = NULL;
	gboolean ok;

	ok = g_file_enumerator_close_finish(G_FILE_ENUMERATOR(obj), res, &err);
	g_object_unref(obj);
	if (status) {
		g_clear_error(&err);
		g_free(l);
		return;
	}
	if (!ok)
		fail_err("close enumerator of", l->dir, err);
	else
		l->done();
	g_free(l);
}

static void list_batch(GObject *obj, GAsyncResult *res, gpointer data)
{
	GFileEnumerator *en = G_FILE_ENUMERATOR(obj);
	struct lister *l = data;
	GError *err = NULL;
	GList *infos;

	infos = g_file_enumerator_next_files_finish(en, res, &err);
	if (status || err) {
		if (err && !status)
			fail_err("enumerate", l->dir, err);
		else
			g_clear_error(&err);
		g_list_free_full(infos, g_object_unref);
		g_object_unref(en);
		g_free(l);
		return;
	}
	if (!infos) {
		g_file_enumerator_close_async(en, G_PRIORITY_DEFAULT, cancel,
					      list_closed, l);
		return;
	}
	for (GList *i = infos; i; i = i->next)
		l->each(i->data);
	g_list_free_full(infos, g_object_unref);
	g_file_enumerator_next_files_async(en, BATCH, G_PRIORITY_DEFAULT,
					   cancel, list_batch, l);
}

static void list_opened(GObject *obj, GAsyncResult *res, gpointer data)
{
	struct lister *l = data;
	GError *err = NULL;
	GFileEnumerator *en;

	en = g_file_enumerate_children_finish(G_FILE(obj), res, &err);
	if (!en) {
		if (!status)
			fail_err("enumerate", l->dir, err);
		else
			g_clear_error(&err);
		g_free(l);
		return;
	}
	g_file_enumerator_next_files_async(en, BATCH, G_PRIORITY_DEFAULT,
					   cancel, list_batch, l);
}

static void list_dir(GFile *dir, void (*each)(GFileInfo *),
		     void (*done)(void))
{
	struct lister *l = g_new(struct lister, 1);

	l->dir = dir;
	l->each = each;
	l->done = done;
	g_file_enumerate_children_async(dir, ATTRS,
					G_FILE_QUERY_INFO_NOFOLLOW_SYMLINKS,
					G_PRIORITY_DEFAULT, cancel,
					list_opened, l);
}

/* ------------------------------------------------------------------ */
/* phase 2 -> 3: DST listing */

static void dst_each(GFileInfo *info)
{
	struct entry *e;

	if (g_file_info_get_file_type(info) != G_FILE_TYPE_REGULAR)
		return;
	e = g_hash_table_lookup(entries, g_file_info_get_name(info));
	if (!e)
		return;		/* not ours */
	e->dst_size = g_file_info_get_size(info);
	g_ptr_array_add(listed, e);
	g_queue_push_tail(&to_hash, e);
	hash_pump();
}

static void dst_done(void)
{
	dst_listed = TRUE;
	if (listed->len != g_hash_table_size(entries)) {
		char *msg = g_strdup_printf("%u files copied, %u found",
				g_hash_table_size(entries), listed->len);

		fail("check", dst_dir, msg);
		g_free(msg);
		return;
	}
	hash_pump();
}

/* ------------------------------------------------------------------ */
/* phase 2: SRC listing and copies */

static void copy_pump(void);

static void copied(GObject *obj, GAsyncResult *res, gpointer data)
{
	GError *err = NULL;

	(void)data;
	inflight--;
	if (status)
		return;
	if (!g_file_copy_finish(G_FILE(obj), res, &err)) {
		fail_err("copy", G_FILE(obj), err);
		return;
	}
	copy_pump();
}

static void copy_pump(void)
{
	while (inflight < MAX_INFLIGHT && !g_queue_is_empty(&to_copy)) {
		struct entry *e = g_queue_pop_head(&to_copy);
		GFile *from = g_file_get_child(src_dir, e->name);
		GFile *to = g_file_get_child(dst_dir, e->name);

		inflight++;
		g_file_copy_async(from, to, G_FILE_COPY_OVERWRITE,
				  G_PRIORITY_DEFAULT, cancel, NULL, NULL,
				  copied, NULL);
		g_object_unref(from);
		g_object_unref(to);
	}
	if (src_listed && !dst_started && inflight == 0 &&
	    g_queue_is_empty(&to_copy)) {
		dst_started = TRUE;
		list_dir(dst_dir, dst_each, dst_done);
	}
}

static void src_each(GFileInfo *info)
{
	struct entry *e;

	if (g_file_info_get_file_type(info) != G_FILE_TYPE_REGULAR)
		return;
	e = g_new0(struct entry, 1);
	e->name = g_strdup(g_file_info_get_name(info));
	e->src_size = g_file_info_get_size(info);
	e->dst_size = -1;
	g_hash_table_insert(entries, e->name, e);
	g_queue_push_tail(&to_copy, e);
	copy_pump();
}

static void src_done(void)
{
	src_listed = TRUE;
	copy_pump();
}

/* ------------------------------------------------------------------ */
/* phase 1 */

static void made_dst(GObject *obj, GAsyncResult *res, gpointer data)
{
	GError *err = NULL;

	(void)data;
	if (!g_file_make_directory_finish(G_FILE(obj), res, &err)) {
		if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_EXISTS)) {
			fail_err("mkdir", G_FILE(obj), err);
			return;
		}
		g_error_free(err);
	}
	list_dir(src_dir, src_each, src_done);
}

static gboolean start(gpointer data)
{
	(void)data;
	g_file_make_directory_async(dst_dir, G_PRIORITY_DEFAULT, cancel,
				    made_dst, NULL);
	return G_SOURCE_REMOVE;
}

static void free_entry(gpointer p)
{
	struct entry *e = p;

	g_free(e->name);
	g_free(e);
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
	struct rusage ru0, ru1;
	uint64_t t0, t1;

	if (argc != 3) {
		fprintf(stderr, "usage: gio_copy SRC DST\n");
		return 2;
	}
	crc_init();
	src_dir = g_file_new_for_commandline_arg(argv[1]);
	dst_dir = g_file_new_for_commandline_arg(argv[2]);
	cancel = g_cancellable_new();
	entries = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
					free_entry);
	listed = g_ptr_array_new();
	loop = g_main_loop_new(NULL, FALSE);

	getrusage(RUSAGE_SELF, &ru0);
	t0 = now_ns();
	g_idle_add(start, NULL);
	g_main_loop_run(loop);
	t1 = now_ns();
	getrusage(RUSAGE_SELF, &ru1);
	fflush(stdout);

	if (status == 0) {
		double cpu = ru_cpu_s(&ru1) - ru_cpu_s(&ru0);

		fprintf(stderr,
			"gio_copy: wall %.3f s, cpu %.3f s, "
			"ctxsw voluntary %ld involuntary %ld\n",
			(t1 - t0) / 1e9, cpu,
			ru1.ru_nvcsw - ru0.ru_nvcsw,
			ru1.ru_nivcsw - ru0.ru_nivcsw);
		g_main_loop_unref(loop);
		g_ptr_array_free(listed, TRUE);
		g_hash_table_destroy(entries);
		g_object_unref(cancel);
		g_object_unref(src_dir);
		g_object_unref(dst_dir);
	}
	return status;
}
