/*
 * echo.c - a thread-per-connection echo server on loopback, under load
 * from client threads.
 *
 *   echo [CLIENTS [CONNS_PER_CLIENT]]     (default 8 x 25)
 *
 * The server's acceptor thread starts one detached thread per accepted
 * connection, which echoes until EOF.  Each client thread keeps two
 * connections open at a time and ping-pongs chunks of a known pattern over
 * them, checking every byte it gets back.  Prints the totals (connections,
 * bytes each way, mismatches); exit 0 when everything matched.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void fail(const char *what, int err)
{
	fprintf(stderr, "echo: %s: %s\n", what, strerror(err));
	exit(2);
}

static int listen_fd;
static struct sockaddr_in server_addr;
static atomic_int stopping;

static pthread_mutex_t live_m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t live_c = PTHREAD_COND_INITIALIZER;
static int live_handlers;
static long accepted;
static long long server_bytes;

void *echo_handler(void *arg);
void *echo_handler(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[4096];
	long long n = 0;
	ssize_t r;

	while ((r = read(fd, buf, sizeof buf)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail("server read", errno);
		}
		for (ssize_t off = 0; off < r;) {
			ssize_t w = write(fd, buf + off, (size_t)(r - off));

			if (w < 0) {
				if (errno == EINTR)
					continue;
				fail("server write", errno);
			}
			off += w;
		}
		n += r;
	}
	close(fd);
	pthread_mutex_lock(&live_m);
	server_bytes += n;
	if (--live_handlers == 0)
		pthread_cond_broadcast(&live_c);
	pthread_mutex_unlock(&live_m);
	return NULL;
}

void *echo_acceptor(void *arg);
void *echo_acceptor(void *arg)
{
	pthread_attr_t a;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);
		pthread_t t;
		int rc;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fail("accept", errno);
		}
		if (atomic_load(&stopping)) {
			close(fd);
			break;
		}
		pthread_mutex_lock(&live_m);
		live_handlers++;
		accepted++;
		pthread_mutex_unlock(&live_m);
		rc = pthread_create(&t, &a, echo_handler, (void *)(intptr_t)fd);
		if (rc != 0)
			fail("pthread_create (handler)", rc);
	}
	pthread_attr_destroy(&a);
	return NULL;
}

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		fail("socket", errno);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	while (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) != 0)
		if (errno != EINTR)
			fail("connect", errno);
	return fd;
}

static unsigned char pattern(long conn, long off)
{
	return (unsigned char)((conn * 7 + off * 13 + (off >> 8)) & 0xff);
}

struct conn {
	int fd;
	long id;
	long size, sent;
};

struct client {
	int me, conns;
	long long bytes;
	long mismatches;
	long opened;
};

static void write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			fail("client write", errno);
		}
		p += w;
		n -= (size_t)w;
	}
}

static void read_all(int fd, unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			fail("client read", errno);
		}
		if (r == 0)
			fail("client read", EPIPE);
		p += r;
		n -= (size_t)r;
	}
}

/* Sends one chunk over c and checks what comes back; 0 when c is done. */
static int step(struct client *cl, struct conn *c, unsigned char *out, unsigned char *in)
{
	long chunk = 1 + (c->id * 37 + c->sent * 3) % 4096;

	if (chunk > c->size - c->sent)
		chunk = c->size - c->sent;
	for (long i = 0; i < chunk; i++)
		out[i] = pattern(c->id, c->sent + i);
	write_all(c->fd, out, (size_t)chunk);
	read_all(c->fd, in, (size_t)chunk);
	if (memcmp(out, in, (size_t)chunk) != 0)
		cl->mismatches++;
	c->sent += chunk;
	cl->bytes += chunk;
	if (c->sent < c->size)
		return 1;
	/* done: half-close, the server's EOF read ends its thread */
	shutdown(c->fd, SHUT_WR);
	if (read(c->fd, in, 1) != 0)
		cl->mismatches++;
	close(c->fd);
	return 0;
}

static void open_conn(struct client *cl, struct conn *c)
{
	c->id = (long)cl->me * 1000 + cl->opened++;
	c->size = 1000 + (c->id * 7919) % 60000;
	c->sent = 0;
	c->fd = dial();
}

void *echo_client(void *arg);
void *echo_client(void *arg)
{
	struct client *cl = arg;
	unsigned char out[4096], in[4096];
	struct conn c[2];
	int open = 0;

	for (int k = 0; k < 2 && cl->opened < cl->conns; k++, open++)
		open_conn(cl, &c[k]);
	while (open > 0) {
		for (int k = 0; k < 2; k++) {
			if (c[k].fd < 0)
				continue;
			if (!step(cl, &c[k], out, in)) {
				if (cl->opened < cl->conns) {
					open_conn(cl, &c[k]);
				} else {
					c[k].fd = -1;
					open--;
				}
			}
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int nclients = argc > 1 ? atoi(argv[1]) : 8;
	int conns = argc > 2 ? atoi(argv[2]) : 25;
	struct client *cl = calloc((size_t)nclients, sizeof *cl);
	pthread_t *ct = calloc((size_t)nclients, sizeof *ct), acc;
	socklen_t len = sizeof server_addr;
	long long client_bytes = 0;
	long mismatches = 0;
	int one = 1, fd;

	signal(SIGPIPE, SIG_IGN);
	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (listen_fd < 0)
		fail("socket", errno);
	setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&server_addr, 0, sizeof server_addr);
	server_addr.sin_family = AF_INET;
	server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(listen_fd, (struct sockaddr *)&server_addr, sizeof server_addr) != 0)
		fail("bind", errno);
	if (listen(listen_fd, 256) != 0)
		fail("listen", errno);
	if (getsockname(listen_fd, (struct sockaddr *)&server_addr, &len) != 0)
		fail("getsockname", errno);

	if ((errno = pthread_create(&acc, NULL, echo_acceptor, NULL)) != 0)
		fail("pthread_create (acceptor)", errno);
	for (int i = 0; i < nclients; i++) {
		cl[i].me = i;
		cl[i].conns = conns;
		if ((errno = pthread_create(&ct[i], NULL, echo_client, &cl[i])) != 0)
			fail("pthread_create (client)", errno);
	}
	for (int i = 0; i < nclients; i++) {
		pthread_join(ct[i], NULL);
		client_bytes += cl[i].bytes;
		mismatches += cl[i].mismatches;
	}
	/* wake the acceptor with one last connection */
	atomic_store(&stopping, 1);
	fd = dial();
	pthread_join(acc, NULL);
	close(fd);
	close(listen_fd);
	pthread_mutex_lock(&live_m);
	while (live_handlers > 0)
		pthread_cond_wait(&live_c, &live_m);
	pthread_mutex_unlock(&live_m);

	printf("clients %d, connections %ld accepted\n", nclients, accepted);
	printf("bytes echoed: client %lld, server %lld\n", client_bytes, server_bytes);
	printf("mismatches %ld\n", mismatches);
	free(cl);
	free(ct);
	return mismatches == 0 && client_bytes == server_bytes ? 0 : 1;
}
