/*
 * stream.c — see stream.h.  One mutex guards all choices: contention is one
 * producer append against one consumer take, both short.
 */
#include "core/stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/pump.h"

struct choice {
	struct gen_stream *s;
	size_t index;
	struct buf text;
	bool is_done;
	struct gen_result res;
};

struct gen_stream {
	pthread_mutex_t mu;
	pthread_cond_t done_cv;
	int efd;
	atomic_bool is_written; /* efd has been written to: its counter may be set */
	atomic_bool cancel;
	size_t n_choices;
	size_t n_done;
	struct choice *choices;
	struct buf notes; /* see gen_stream_note */
};

static void wake(struct gen_stream *s)
{
	if (pump_signal_here(s->efd))
		return; /* the producer runs in the consumer's own pump */
	atomic_store(&s->is_written, true);
	uint64_t one = 1;
	/* EAGAIN means the counter is already non-zero: the consumer will wake. */
	ssize_t n = write(s->efd, &one, sizeof one);
	(void)n;
}

static int on_piece(void *ud, const char *utf8, size_t len)
{
	struct choice *c = ud;
	struct gen_stream *s = c->s;
	pthread_mutex_lock(&s->mu);
	enum brg_err err = buf_append(&c->text, utf8, len);
	wake(s);
	pthread_mutex_unlock(&s->mu);
	/* A consumer that stopped reading (or a text over the cap) stops the
	 * producer rather than letting memory grow without bound. */
	return err != BRG_OK || atomic_load(&s->cancel);
}

static void on_done(void *ud, const struct gen_result *res)
{
	struct choice *c = ud;
	struct gen_stream *s = c->s;
	pthread_mutex_lock(&s->mu);
	if (!c->is_done) {
		c->res = *res;
		c->is_done = true;
		s->n_done++;
		pthread_cond_broadcast(&s->done_cv);
	}
	/* Signal before unlocking: once the lock is released after the last
	 * on_done, the consumer may free the stream at any moment. */
	wake(s);
	pthread_mutex_unlock(&s->mu);
}

/*
 * One spare eventfd per thread: an HTTP thread makes a stream per request,
 * and eventfd() + close() are two system calls of a proxied request's
 * twenty.  A stream is freed only after its last on_done (see stream.h),
 * so no producer writes to its eventfd after that; the counter is cleared
 * before reuse.  Closed when the thread ends.
 */
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static _Thread_local int tl_spare_efd = -1;

static void spare_close(void *p)
{
	close((int)(intptr_t)p - 1);
}

static bool spare_key_ok;

static void spare_key_init(void)
{
	spare_key_ok = pthread_key_create(&spare_key, spare_close) == 0;
}

/* A spare's counter is zero: efd_put cleared it. */
static int efd_take(void)
{
	if (tl_spare_efd < 0)
		return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int fd = tl_spare_efd;
	tl_spare_efd = -1;
	pthread_setspecific(spare_key, NULL);
	return fd;
}

static void efd_put(int fd, bool is_written)
{
	uint64_t v;
	while (is_written && read(fd, &v, sizeof v) < 0 && errno == EINTR)
		;
	pthread_once(&spare_once, spare_key_init);
	/* The key's value is fd + 1, so fd 0 is not mistaken for "none". */
	if (!spare_key_ok || tl_spare_efd >= 0 ||
	    pthread_setspecific(spare_key, (void *)(intptr_t)(fd + 1))) {
		close(fd);
		return;
	}
	tl_spare_efd = fd;
}

struct gen_stream *gen_stream_new(size_t n_choices, size_t max_text_bytes)
{
	struct gen_stream *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->choices = calloc(n_choices ? n_choices : 1, sizeof *s->choices);
	s->efd = efd_take();
	if (!s->choices || s->efd < 0)
		goto fail;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->done_cv, NULL);
	atomic_init(&s->cancel, false);
	atomic_init(&s->is_written, false);
	s->n_choices = n_choices;
	buf_init(&s->notes, max_text_bytes);
	for (size_t i = 0; i < n_choices; i++) {
		s->choices[i].s = s;
		s->choices[i].index = i;
		buf_init(&s->choices[i].text, max_text_bytes);
	}
	return s;
fail:
	if (s->efd >= 0)
		close(s->efd);
	free(s->choices);
	free(s);
	return NULL;
}

void gen_stream_free(struct gen_stream *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_choices; i++)
		buf_fini(&s->choices[i].text);
	buf_fini(&s->notes);
	free(s->choices);
	efd_put(s->efd, atomic_load(&s->is_written));
	pthread_cond_destroy(&s->done_cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

struct sink gen_stream_sink(struct gen_stream *s, size_t i)
{
	struct sink k = {on_piece, on_done, &s->choices[i]};
	return k;
}

void gen_stream_fail(struct gen_stream *s, size_t i, const struct gen_result *res)
{
	on_done(&s->choices[i], res);
}

int gen_stream_fd(const struct gen_stream *s)
{
	return s->efd;
}

const atomic_bool *gen_stream_cancel_flag(const struct gen_stream *s)
{
	return &s->cancel;
}

void gen_stream_cancel(struct gen_stream *s)
{
	atomic_store(&s->cancel, true);
}

enum brg_err gen_stream_take(struct gen_stream *s, size_t i, struct buf *out, bool *is_done,
                             struct gen_result *res)
{
	struct choice *c = &s->choices[i];
	pthread_mutex_lock(&s->mu);
	enum brg_err err = buf_append(out, c->text.data ? c->text.data : "", c->text.len);
	buf_reset(&c->text);
	*is_done = c->is_done;
	if (c->is_done && res)
		*res = c->res;
	pthread_mutex_unlock(&s->mu);
	return err;
}

enum brg_err gen_stream_note(struct gen_stream *s, const char *text, size_t len)
{
	pthread_mutex_lock(&s->mu);
	enum brg_err err = buf_append(&s->notes, text, len);
	wake(s);
	pthread_mutex_unlock(&s->mu);
	return err;
}

enum brg_err gen_stream_take_notes(struct gen_stream *s, struct buf *out)
{
	pthread_mutex_lock(&s->mu);
	enum brg_err err = buf_append(out, s->notes.data ? s->notes.data : "", s->notes.len);
	buf_reset(&s->notes);
	pthread_mutex_unlock(&s->mu);
	return err;
}

void gen_stream_ack(struct gen_stream *s)
{
	uint64_t v;
	/* Never written (every signal came through the pump): nothing to clear. */
	while (atomic_load(&s->is_written) && read(s->efd, &v, sizeof v) < 0 && errno == EINTR)
		;
}

bool gen_stream_all_done(struct gen_stream *s)
{
	pthread_mutex_lock(&s->mu);
	bool done = s->n_done == s->n_choices;
	pthread_mutex_unlock(&s->mu);
	return done;
}

void gen_stream_wait_all_done(struct gen_stream *s)
{
	/* A producer whose I/O runs on this very thread (core/pump.h) ends
	 * only while the thread pumps: wait in the pump, not on the cv. */
	while (pump_thread_is_busy() && !gen_stream_all_done(s))
		pump_poll(NULL, 0, -1);
	pthread_mutex_lock(&s->mu);
	while (s->n_done < s->n_choices)
		pthread_cond_wait(&s->done_cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
}
