/*
 * pump.c — see pump.h.  Two thread-local words; nothing is shared.
 */
#include "core/pump.h"

#include <stddef.h>

static _Thread_local unsigned tl_n_requests;
static _Thread_local pump_fn tl_pump;

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

int pump_poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
	if (tl_pump)
		return tl_pump(fds, n, timeout_ms);
	return poll(fds, n, timeout_ms);
}
