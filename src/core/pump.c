/*
 * pump.c — see pump.h.  Two thread-local words; nothing is shared.
 */
#include "core/pump.h"

#include <stddef.h>

static _Thread_local unsigned tl_n_requests;
static _Thread_local pump_fn tl_pump;
/* While the pump runs: the caller's fds, and which of them producers on
 * this thread signalled (pump_signal_here). */
static _Thread_local const struct pollfd *tl_fds;
static _Thread_local nfds_t tl_n_fds;
static _Thread_local unsigned tl_signalled;

void pump_thread_enable(void)
{
	tl_n_requests++;
}

bool pump_thread_is_enabled(void)
{
	return tl_n_requests > 0;
}

unsigned pump_thread_requests(void)
{
	return tl_n_requests;
}

void pump_thread_set(pump_fn fn)
{
	tl_pump = fn;
}

bool pump_thread_is_busy(void)
{
	return tl_pump != NULL;
}

bool pump_signal_here(int fd)
{
	for (nfds_t i = 0; i < tl_n_fds && i < 32; i++) {
		if (tl_fds[i].fd == fd && (tl_fds[i].events & POLLIN)) {
			tl_signalled |= 1u << i;
			return true;
		}
	}
	return false;
}

int pump_poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
	if (!tl_pump)
		return poll(fds, n, timeout_ms);
	tl_fds = fds;
	tl_n_fds = n;
	tl_signalled = 0;
	int rc = tl_pump(fds, n, timeout_ms);
	tl_fds = NULL;
	tl_n_fds = 0;
	if (!tl_signalled)
		return rc;
	/* Signalled from inside the pump: news, whatever its poll said. */
	int ready = 0;
	for (nfds_t i = 0; i < n; i++) {
		if (i < 32 && (tl_signalled & (1u << i)))
			fds[i].revents |= POLLIN;
		ready += fds[i].revents != 0;
	}
	tl_signalled = 0;
	return ready;
}
