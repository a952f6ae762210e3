/*
 * serve.h — the start-up both bench servers share (upstream.c, relay.c):
 * a loopback listener, the stop signals as a descriptor, and one epoll set
 * watching both.  Header-only: each bench program is one .c file built by
 * run.sh without a library.
 */
#ifndef BENCH_GATEWAY_SERVE_H
#define BENCH_GATEWAY_SERVE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* A non-blocking listener on 127.0.0.1:port (0: any); *out_port gets the
 * bound port.  -1 on failure (errno set). */
static int listen_on(int port, int *out_port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t sl = sizeof sa;
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 1024) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
		close(fd);
		return -1;
	}
	*out_port = ntohs(sa.sin_port);
	return fd;
}

/*
 * Blocks SIGINT, SIGTERM and 'extra' (0: none), ignores SIGPIPE, listens
 * on 'port' and makes an epoll set holding the listener (data.ptr NULL)
 * and the signals' descriptor (data.ptr = sfd).  Returns the epoll fd, or
 * -1 with errno set.
 */
static int serve_start(int port, int extra, int *lfd, int *bound, int *sfd)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (extra)
		sigaddset(&mask, extra);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	*sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	*lfd = listen_on(port, bound);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (*sfd < 0 || *lfd < 0 || ep < 0)
		return -1;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, *lfd, &ev);
	ev.data.ptr = sfd; /* a distinct tag for the signal fd */
	epoll_ctl(ep, EPOLL_CTL_ADD, *sfd, &ev);
	return ep;
}

#endif
