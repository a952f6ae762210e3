/*
 * http_client.h — a tiny blocking HTTP/1.1 client for the tests of http/
 * (test_http.c, test_http_conn.c): plain sockets, no parsing beyond the
 * status line, so the tests see exactly the bytes the server sent.
 * Include it after cmocka.h: failures are cmocka assertions.
 */
#ifndef BRG_TEST_HTTP_CLIENT_H
#define BRG_TEST_HTTP_CLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

struct response {
	int status;
	char *raw; /* NUL-terminated */
	size_t raw_len;
	const char *body; /* into raw */
	size_t body_len;
};

static inline int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	return fd;
}

static inline void send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		assert_true(w > 0);
		p += w;
		n -= (size_t)w;
	}
}

/* Reads until the server closes; parses the status line. */
static inline void read_response(int fd, struct response *r)
{
	size_t cap = 4096;
	memset(r, 0, sizeof *r);
	r->raw = malloc(cap);
	for (;;) {
		if (r->raw_len + 1 == cap)
			r->raw = realloc(r->raw, cap *= 2);
		ssize_t n = recv(fd, r->raw + r->raw_len, cap - r->raw_len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		r->raw_len += (size_t)n;
	}
	r->raw[r->raw_len] = '\0';
	close(fd);
	r->status = -1;
	sscanf(r->raw, "HTTP/1.%*d %d", &r->status);
	const char *sep = strstr(r->raw, "\r\n\r\n");
	r->body = sep ? sep + 4 : r->raw + r->raw_len;
	r->body_len = (size_t)(r->raw + r->raw_len - r->body);
}

static inline void response_free(struct response *r)
{
	free(r->raw);
}

static inline bool has_header(const struct response *r, const char *line)
{
	const char *end = r->body;
	size_t n = strlen(line);
	for (const char *p = strstr(r->raw, "\r\n"); p && p + 2 < end; p = strstr(p + 2, "\r\n"))
		if (strncasecmp(p + 2, line, n) == 0)
			return true;
	return false;
}

/* Decodes a chunked body into out (NUL-terminated); false when malformed. */
static inline bool dechunk(const char *p, const char *end, char *out, size_t cap, size_t *n_chunks)
{
	size_t len = 0;
	*n_chunks = 0;
	for (;;) {
		char *after;
		unsigned long n = strtoul(p, &after, 16);
		if (after == p || after + 2 > end || strncmp(after, "\r\n", 2) != 0)
			return false;
		p = after + 2;
		if (n == 0)
			break;
		if (p + n + 2 > end || len + n >= cap)
			return false;
		memcpy(out + len, p, n);
		len += n;
		p += n + 2;
		(*n_chunks)++;
	}
	out[len] = '\0';
	return true;
}

#endif
