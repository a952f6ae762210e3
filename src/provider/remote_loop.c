/*
 * remote_loop.c — where remote transfers run: the provider's I/O thread,
 * or the HTTP thread that asked for them.
 *
 * Every transfer lives in one struct xloop (a libcurl multi handle and the
 * list of its transfers) and everything about it happens on that loop's
 * thread, so a transfer needs no lock.
 *
 * - The provider's I/O thread drives its loop with curl_multi_poll().  A
 *   request from a thread that cannot wait in a pump (an engine scheduler
 *   falling back to a remote provider, a one-shot client's first request)
 *   is queued to it and woken with curl_multi_wakeup().
 * - An HTTP connection thread (core/pump.h) runs its transfers itself,
 *   from inside the thread's waits, where the client's socket and the
 *   answer's eventfd are polled next to the upstream's sockets.  No
 *   hand-off, no wake-up of another thread.  A plain-http provider's
 *   transfers go through brigade's own client (remote_h1.c), whose idle
 *   connections every thread shares; the others through the thread's own
 *   libcurl multi handle, driven through libcurl's socket API.  That
 *   handle's connections belong to the thread and close with it (the
 *   client's connection), which is why a connection's first libcurl
 *   request still goes through the I/O thread, whose connections are
 *   shared — a client that opens a connection per request never pays an
 *   upstream connect.
 *
 * Either way, while transfers are active the loop wakes at least every
 * POLL_ACTIVE_MS to notice cancel flags, deadlines and the provider
 * closing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/pump.h"
#include "provider/remote_int.h"

#define POLL_ACTIVE_MS 20
/* The requests a connection has seen before its transfers run in-thread. */
#define INLINE_AFTER 1

/* ---- one loop, whichever thread drives it ---------------------------------- */

static void detach(struct xloop *l, struct xfer *x)
{
	for (struct xfer **pp = &l->active; *pp; pp = &(*pp)->next)
		if (*pp == x) {
			*pp = x->next;
			break;
		}
	if (x->easy)
		curl_multi_remove_handle(l->multi, x->easy);
	else
		remote_h1_drop(x);
}

void remote_xfer_start(struct xfer *x)
{
	struct xloop *l = x->loop;
	x->status = 0;
	x->retry_after_s = -1;
	x->has_first_byte = false;
	buf_reset(&x->err_body);
	x->started_ms = brg_now_ms();
	x->next = l->active;
	l->active = x;
	if (x->easy) {
		remote_xfer_curl_request(x);
		curl_multi_add_handle(l->multi, x->easy);
	} else {
		remote_h1_start(x);
	}
}

void remote_xfer_finish(struct xfer *x, CURLcode cc)
{
	detach(x->loop, x);
	x->ops->end(x, cc);
}

/* Cancelled, past the first-byte deadline, or its provider closing: end it
 * now.  Removing the handle mid-transfer closes the upstream connection at
 * once, which is how a client's disconnect reaches the upstream. */
static void check_deadlines(struct xloop *l)
{
	long long now = brg_now_ms();
	struct xfer *next;
	for (struct xfer *x = l->active; x; x = next) {
		next = x->next;
		bool is_closing = atomic_load(&x->rp->is_closing);
		bool is_late =
		    !x->has_first_byte && now - x->started_ms > x->rp->cfg->first_byte_timeout_ms;
		bool is_cancel = x->cancel && atomic_load(x->cancel);
		if (!is_closing && !is_late && !is_cancel) {
			if (!x->easy)
				remote_h1_check(x, now);
			continue;
		}
		if (is_late && !is_closing) {
			remote_xfer_fail(x, BRG_E_UPSTREAM_TIMEOUT, "no answer within %d ms",
			                 x->rp->cfg->first_byte_timeout_ms);
		} else {
			x->is_cancelled = true;
			x->is_closing = !is_cancel;
		}
		remote_xfer_finish(x, CURLE_OK);
	}
}

/* Ends the finished transfers; returns how many. */
static int reap(struct xloop *l)
{
	CURLMsg *msg;
	int left, n = 0;
	while ((msg = curl_multi_info_read(l->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		n++;
		struct xfer *x = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		CURLcode cc = msg->data.result;
		detach(l, x);
		x->ops->end(x, cc);
	}
	return n;
}

/* libcurl sizes its connection cache from the handles added at the time
 * (4 x handles); each request adds and removes its own, so under load the
 * cache shrank below the requests in flight and connections were closed
 * and reopened (bench/gateway saw 20-120 reconnects per 10 s).  A fixed
 * cache keeps them alive. */
static CURLM *new_multi(long max_connections)
{
	CURLM *m = curl_multi_init();
	if (m)
		curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, max_connections);
	return m;
}

/* ---- the provider's I/O thread --------------------------------------------- */

static void *io_main(void *arg)
{
	struct remote_provider *rp = arg;
	struct xloop *l = &rp->io;
	for (;;) {
		pthread_mutex_lock(&rp->mu);
		struct xfer *in = rp->incoming;
		rp->incoming = NULL;
		bool is_closing = atomic_load(&rp->is_closing);
		pthread_mutex_unlock(&rp->mu);
		while (in) {
			struct xfer *x = in;
			in = in->next;
			remote_xfer_start(x);
		}
		int running = 0;
		curl_multi_perform(l->multi, &running);
		reap(l);
		check_deadlines(l);
		if (is_closing)
			break;
		curl_multi_poll(l->multi, NULL, 0, l->active ? POLL_ACTIVE_MS : 60000, NULL);
	}
	pthread_mutex_lock(&rp->mu);
	rp->is_drained = true;
	pthread_cond_broadcast(&rp->cv);
	pthread_mutex_unlock(&rp->mu);
	return NULL;
}

enum brg_err remote_loop_start(struct remote_provider *rp)
{
	rp->io.multi = new_multi(256);
	if (!rp->io.multi)
		return BRG_E_NOMEM;
	pthread_mutex_init(&rp->mu, NULL);
	pthread_cond_init(&rp->cv, NULL);
	if (pthread_create(&rp->thread, NULL, io_main, rp) != 0) {
		curl_multi_cleanup(rp->io.multi);
		pthread_cond_destroy(&rp->cv);
		pthread_mutex_destroy(&rp->mu);
		return BRG_E_RESOURCE;
	}
	return BRG_OK;
}

void remote_loop_close(struct remote_provider *rp)
{
	pthread_mutex_lock(&rp->mu);
	atomic_store(&rp->is_closing, true);
	pthread_mutex_unlock(&rp->mu);
	curl_multi_wakeup(rp->io.multi);
	pthread_mutex_lock(&rp->mu);
	while (!rp->is_drained)
		pthread_cond_wait(&rp->cv, &rp->mu);
	pthread_mutex_unlock(&rp->mu);
}

void remote_loop_free(struct remote_provider *rp)
{
	remote_loop_close(rp);
	pthread_join(rp->thread, NULL);
	curl_multi_cleanup(rp->io.multi);
	pthread_cond_destroy(&rp->cv);
	pthread_mutex_destroy(&rp->mu);
}

/* ---- a loop on the waiting thread itself --------------------------------- */

#define MAX_SOCKS 64
#define MAX_EXTRA 4
#define MAX_SPARE 4
#define MAX_H1    64

struct thread_loop {
	struct xloop l;
	struct pollfd socks[MAX_SOCKS]; /* libcurl's sockets, from on_socket */
	size_t n_socks;
	long long timer_at;     /* when libcurl wants its timeout action; -1: never */
	CURL *spare[MAX_SPARE]; /* easy handles kept for the next transfers */
	size_t n_spare;
};

static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;
static _Thread_local struct thread_loop *tl_loop;

/* Thread exit: every transfer has ended (handlers wait for theirs), so
 * only the idle upstream connections are left to close. */
static void thread_loop_free(void *p)
{
	struct thread_loop *t = p;
	for (size_t i = 0; i < t->n_spare; i++)
		curl_easy_cleanup(t->spare[i]);
	curl_multi_cleanup(t->l.multi);
	free(t);
}

static void key_init(void)
{
	if (pthread_key_create(&tl_key, thread_loop_free) != 0)
		log_error("remote: no thread key; transfers stay on the I/O threads");
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *ud, void *sockp)
{
	(void)easy;
	(void)sockp;
	struct thread_loop *t = ud;
	size_t i = 0;
	while (i < t->n_socks && t->socks[i].fd != s)
		i++;
	if (what == CURL_POLL_REMOVE) {
		if (i < t->n_socks)
			t->socks[i] = t->socks[--t->n_socks];
		return 0;
	}
	if (i == t->n_socks) {
		if (t->n_socks == MAX_SOCKS)
			return -1; /* libcurl fails the transfer */
		t->n_socks++;
	}
	t->socks[i] = (struct pollfd){
	    .fd = s,
	    .events = (short)(((what & CURL_POLL_IN) ? POLLIN : 0) |
	                      ((what & CURL_POLL_OUT) ? POLLOUT : 0)),
	};
	return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *ud)
{
	(void)m;
	struct thread_loop *t = ud;
	t->timer_at = timeout_ms < 0 ? -1 : brg_now_ms() + timeout_ms;
	return 0;
}

/* The calling thread's loop, made on first use; NULL when it cannot be. */
static struct thread_loop *thread_loop(void)
{
	if (tl_loop)
		return tl_loop;
	pthread_once(&tl_once, key_init);
	struct thread_loop *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->timer_at = -1;
	/* One client connection runs one request at a time; a few upstream
	 * connections cover fan-out to several providers. */
	t->l.multi = new_multi(16);
	if (!t->l.multi || pthread_setspecific(tl_key, t) != 0) {
		if (t->l.multi)
			curl_multi_cleanup(t->l.multi);
		free(t);
		return NULL;
	}
	curl_multi_setopt(t->l.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(t->l.multi, CURLMOPT_SOCKETDATA, t);
	curl_multi_setopt(t->l.multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(t->l.multi, CURLMOPT_TIMERDATA, t);
	tl_loop = t;
	return t;
}

/* After the pump's libcurl work: transfers past their deadline end, and
 * a thread with none left stops pumping. */
static void settle(struct thread_loop *t)
{
	check_deadlines(&t->l);
	if (!t->l.active)
		pump_thread_set(NULL);
}

/* The own client's transfers to poll (gathered before, handled after the
 * poll: handling one may end it, or start another). */
struct h1_wait {
	struct xfer *x[MAX_H1];
	size_t n;
	bool is_due; /* one has news without waiting */
};

static void h1_gather(struct thread_loop *t, struct pollfd *out, struct h1_wait *w)
{
	w->n = 0;
	w->is_due = false;
	for (struct xfer *x = t->l.active; x; x = x->next) {
		if (x->easy)
			continue;
		w->is_due |= remote_h1_is_due(x);
		short events = 0;
		int fd = remote_h1_fd(x, &events);
		if (fd < 0 || w->n == MAX_H1)
			continue; /* past MAX_H1: its deadline check still ends it */
		out[w->n] = (struct pollfd){.fd = fd, .events = events};
		w->x[w->n++] = x;
	}
}

/* The pump (core/pump.h): one poll over the caller's fds, libcurl's
 * sockets and the own client's, then their work, then the loop's own
 * checks. */
static int pump(struct pollfd *fds, nfds_t n, int timeout_ms)
{
	struct thread_loop *t = tl_loop;
	struct pollfd all[MAX_EXTRA + MAX_SOCKS + MAX_H1];
	struct h1_wait w;
	if (n > MAX_EXTRA) {
		errno = EINVAL;
		return -1;
	}
	if (n)
		memcpy(all, fds, n * sizeof *fds);
	memcpy(all + n, t->socks, t->n_socks * sizeof *t->socks);
	long long now = brg_now_ms();
	int running = 0;
	if (t->timer_at >= 0 && t->timer_at <= now) {
		/* libcurl's work is due now (a new transfer's connect and send):
		 * do it first rather than spend a poll that cannot wait. */
		t->timer_at = -1;
		curl_multi_socket_action(t->l.multi, CURL_SOCKET_TIMEOUT, 0, &running);
		memcpy(all + n, t->socks, t->n_socks * sizeof *t->socks);
		if (reap(&t->l)) {
			/* A transfer ended inside that call (a fast upstream answers
			 * before libcurl returns): its consumer has news, so a poll,
			 * even one that does not wait, would only cost time. */
			for (nfds_t i = 0; i < n; i++)
				fds[i].revents = 0;
			settle(t);
			return 0;
		}
	}
	nfds_t n_curl = n + t->n_socks;
	h1_gather(t, all + n_curl, &w);
	nfds_t n_all = n_curl + w.n;
	long wait = timeout_ms < 0 || timeout_ms > POLL_ACTIVE_MS ? POLL_ACTIVE_MS : timeout_ms;
	if (t->timer_at >= 0 && t->timer_at - now < wait)
		wait = t->timer_at <= now ? 0 : (long)(t->timer_at - now);
	if (w.is_due)
		wait = 0;
	int rc = poll(all, n_all, (int)wait);
	int saved = errno;
	int ready = 0;
	for (nfds_t i = 0; i < n; i++) {
		fds[i].revents = rc > 0 ? all[i].revents : 0;
		ready += fds[i].revents != 0;
	}
	for (nfds_t i = n; rc > 0 && i < n_curl; i++) {
		short re = all[i].revents;
		if (!re)
			continue;
		int ev = ((re & (POLLIN | POLLHUP)) ? CURL_CSELECT_IN : 0) |
		         ((re & POLLOUT) ? CURL_CSELECT_OUT : 0) |
		         ((re & (POLLERR | POLLNVAL)) ? CURL_CSELECT_ERR : 0);
		curl_multi_socket_action(t->l.multi, all[i].fd, ev, &running);
	}
	for (size_t i = 0; rc > 0 && i < w.n; i++)
		if (all[n_curl + i].revents)
			remote_h1_event(w.x[i], all[n_curl + i].revents);
	if (t->timer_at >= 0 && brg_now_ms() >= t->timer_at) {
		t->timer_at = -1;
		curl_multi_socket_action(t->l.multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	reap(&t->l);
	settle(t);
	if (rc < 0) {
		errno = saved;
		return -1;
	}
	return ready;
}

CURL *remote_loop_easy(void)
{
	struct thread_loop *t = tl_loop;
	if (t && t->n_spare)
		return t->spare[--t->n_spare];
	return curl_easy_init();
}

void remote_loop_easy_done(CURL *e)
{
	struct thread_loop *t = tl_loop;
	if (!e)
		return;
	if (t && t->n_spare < MAX_SPARE) {
		curl_easy_reset(e); /* every option back to its default */
		t->spare[t->n_spare++] = e;
		return;
	}
	curl_easy_cleanup(e);
}

/* Whether the calling thread should run transfers itself; a connection's
 * first request goes through the I/O thread (see the top of the file),
 * unless the own client carries it: its idle connections are shared by
 * every thread. */
static struct thread_loop *inline_loop(const struct remote_provider *rp)
{
	if (!pump_thread_is_enabled() || (!rp->h1 && pump_thread_requests() <= INLINE_AFTER))
		return NULL;
	return thread_loop();
}

static void free_all(struct xfer **xs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		xs[i]->ops->free(xs[i]);
}

enum brg_err remote_submit(struct remote_provider *rp, struct xfer **xs, size_t n,
                           struct brg_error *err)
{
	struct thread_loop *t = atomic_load(&rp->is_closing) ? NULL : inline_loop(rp);
	for (size_t i = 0; !(t && rp->h1) && i < n; i++)
		if (remote_xfer_use_curl(xs[i])) {
			free_all(xs, n);
			return brg_fail(err, BRG_E_NOMEM, "out of memory");
		}
	if (t) {
		for (size_t i = 0; i < n; i++) {
			xs[i]->loop = &t->l;
			remote_xfer_start(xs[i]);
		}
		pump_thread_set(pump);
		return BRG_OK;
	}
	pthread_mutex_lock(&rp->mu);
	bool is_closing = atomic_load(&rp->is_closing);
	for (size_t i = 0; !is_closing && i < n; i++) {
		xs[i]->loop = &rp->io;
		xs[i]->next = rp->incoming;
		rp->incoming = xs[i];
	}
	pthread_mutex_unlock(&rp->mu);
	if (is_closing) {
		free_all(xs, n);
		return brg_fail(err, BRG_E_SHUTTING_DOWN, "server is shutting down");
	}
	curl_multi_wakeup(rp->io.multi);
	return BRG_OK;
}
