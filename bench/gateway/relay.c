/*
 * relay.c — a do-nothing TCP byte relay for the gateway benchmark
 * (bench/gateway/run.sh): the floor under any proxy hop.
 *
 * Part of what brigade adds in front of an upstream is the price of being a
 * second hop at all: one more process to wake, two more sockets, one more
 * trip through the loopback stack each way.  This relay pays that and
 * nothing else: for each accepted client connection it opens one TCP
 * connection to the upstream and copies bytes both ways as they arrive,
 * parsing nothing.  What brigade adds beyond what the relay adds is its own.
 *
 * One thread, one level-triggered epoll set, non-blocking sockets with
 * TCP_NODELAY.  Bytes read from one side go straight into the other side's
 * buffer and are written at once; what a partial write leaves waits there
 * for EPOLLOUT, and the side feeding it stops reading until it is empty, so
 * memory stays bounded and nothing is lost or reordered.  When either side
 * closes or fails, both are closed.  The upstream connect() blocks: to a
 * loopback listener the handshake finishes (or is refused) inside the call.
 *
 * Usage: relay PORT UPSTREAM_PORT   (PORT 0 picks a free port, printed as
 * "listening on http://127.0.0.1:PORT"; the upstream is
 * 127.0.0.1:UPSTREAM_PORT).  SIGINT/SIGTERM end it cleanly.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serve.h"

#define BUF_BYTES  ((size_t)64 << 10)
#define MAX_EVENTS 64

struct link;

/* One socket of a link and the bytes waiting to be written to it. */
struct end {
	struct link *link;
	int fd;
	uint32_t events; /* what epoll watches on fd now */
	size_t off, len; /* buf[off .. len) is still to be written */
	char buf[BUF_BYTES];
};

/* A client connection and its upstream connection. */
struct link {
	struct end end[2]; /* [0] the client, [1] the upstream */
	bool is_closed;
	struct link *prev, *next; /* the open links, or the closed ones to free */
};

static struct link *open_links, *dead_links;

static struct end *peer(struct end *e)
{
	struct link *l = e->link;
	return e == &l->end[0] ? &l->end[1] : &l->end[0];
}

/* Watches e for reads while its peer's buffer is empty (there is room to
 * read into) and for writes while its own buffer holds bytes. */
static void rearm(int ep, struct end *e)
{
	uint32_t want = (peer(e)->len == 0 ? EPOLLIN : 0) | (e->len ? EPOLLOUT : 0);
	if (want == e->events)
		return;
	struct epoll_event ev = {.events = want, .data.ptr = e};
	epoll_ctl(ep, EPOLL_CTL_MOD, e->fd, &ev);
	e->events = want;
}

/* Writes what e's buffer holds, as far as the socket takes it; false when
 * the socket failed. */
static bool flush(int ep, struct end *e)
{
	while (e->off < e->len) {
		ssize_t n = send(e->fd, e->buf + e->off, e->len - e->off, MSG_NOSIGNAL);
		if (n > 0) {
			e->off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		return false;
	}
	if (e->off == e->len)
		e->off = e->len = 0;
	rearm(ep, e);
	rearm(ep, peer(e));
	return true;
}

/* Copies what e's socket has to its peer; false when the link must close
 * (end of stream or an error on either side).  A short read means the
 * socket is drained for now: level-triggered epoll reports what comes
 * later, so no read is spent just to see EAGAIN. */
static bool pump(int ep, struct end *e)
{
	struct end *to = peer(e);
	while (to->len == 0) {
		ssize_t n = read(e->fd, to->buf, BUF_BYTES);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK;
		if (n == 0)
			return false;
		to->off = 0;
		to->len = (size_t)n;
		if (!flush(ep, to))
			return false;
		if ((size_t)n < BUF_BYTES)
			break;
	}
	return true;
}

/* Closes both sockets; the link is freed after the current batch of events,
 * which may still name it. */
static void link_close(int ep, struct link *l)
{
	for (int i = 0; i < 2; i++) {
		epoll_ctl(ep, EPOLL_CTL_DEL, l->end[i].fd, NULL);
		close(l->end[i].fd);
	}
	l->is_closed = true;
	if (l->prev)
		l->prev->next = l->next;
	else
		open_links = l->next;
	if (l->next)
		l->next->prev = l->prev;
	l->prev = NULL;
	l->next = dead_links;
	dead_links = l;
}

static void free_list(struct link **head)
{
	while (*head) {
		struct link *l = *head;
		*head = l->next;
		free(l);
	}
}

/* Connects to the upstream for the accepted client cfd; closes cfd when
 * that fails. */
static void link_open(int ep, int cfd, int uport)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)uport)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int ufd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct link *l = ufd < 0 ? NULL : calloc(1, sizeof *l);
	if (!l || connect(ufd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    fcntl(ufd, F_SETFL, fcntl(ufd, F_GETFL) | O_NONBLOCK) < 0) {
		perror("relay: upstream");
		if (ufd >= 0)
			close(ufd);
		free(l);
		close(cfd);
		return;
	}
	int fds[2] = {cfd, ufd};
	for (int i = 0; i < 2; i++) {
		int one = 1;
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		l->end[i] = (struct end){.link = l, .fd = fds[i], .events = EPOLLIN};
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &l->end[i]};
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
	}
	l->next = open_links;
	if (open_links)
		open_links->prev = l;
	open_links = l;
}

static bool parse_port(const char *s, long *port)
{
	char *end = NULL;
	*port = strtol(s, &end, 10);
	return *s && !*end && *port >= 0 && *port <= 65535;
}

int main(int argc, char **argv)
{
	long port = 0, uport = 0;
	if (argc != 3 || !parse_port(argv[1], &port) || !parse_port(argv[2], &uport) ||
	    uport == 0) {
		fprintf(stderr, "usage: %s PORT UPSTREAM_PORT   (PORT 0 = any free port)\n",
		        argv[0]);
		return 2;
	}

	int lfd = -1, sfd = -1, bound = 0;
	int ep = serve_start((int)port, 0, &lfd, &bound, &sfd);
	if (ep < 0) {
		perror("relay: listen");
		return 1;
	}
	printf("listening on http://127.0.0.1:%d\n", bound);
	fflush(stdout);

	bool is_running = true;
	while (is_running) {
		struct epoll_event evs[MAX_EVENTS];
		int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &sfd) {
				is_running = false;
				break;
			}
			if (evs[i].data.ptr == NULL) {
				int fd;
				while ((fd = accept4(lfd, NULL, NULL,
				                     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
					link_open(ep, fd, (int)uport);
				continue;
			}
			struct end *e = evs[i].data.ptr;
			if (e->link->is_closed)
				continue; /* closed earlier in this batch */
			uint32_t got = evs[i].events;
			bool keep = true;
			if (got & EPOLLOUT)
				keep = flush(ep, e);
			/* A hang-up or error still forwards what is left to read. */
			if (keep && (got & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				keep = pump(ep, e) && !(got & (EPOLLHUP | EPOLLERR));
			if (!keep)
				link_close(ep, e->link);
		}
		free_list(&dead_links);
	}
	while (open_links)
		link_close(ep, open_links);
	free_list(&dead_links);
	close(ep);
	close(lfd);
	close(sfd);
	return 0;
}
