/*
 * pump.h — I/O that a waiting thread does itself.
 *
 * An HTTP connection thread spends most of a proxied request waiting for
 * the upstream.  Handing the transfer to another thread and being woken by
 * it costs two context switches per request; instead, a producer may run
 * its I/O on the waiting thread, inside that thread's waits.  A thread
 * opts in with pump_thread_enable() when every wait it does goes through
 * pump_poll() (http/ does that for its connection threads); a producer
 * that has work on such a thread installs a pump function, and pump_poll()
 * then calls it instead of poll(), so the work moves while the thread
 * waits.  On other threads pump_poll() is plain poll().
 */
#ifndef BRG_CORE_PUMP_H
#define BRG_CORE_PUMP_H

#include <poll.h>
#include <stdbool.h>

/*
 * Waits up to timeout_ms (-1: no limit; the pump may return earlier) for
 * any of fds or the pump's own I/O, does that I/O, and fills fds' revents.
 * Returns as poll() does: the count of fds with revents (0 when only the
 * pump's own work was done, or time ran out), -1 with errno on error.
 */
typedef int (*pump_fn)(struct pollfd *fds, nfds_t n, int timeout_ms);

/* The calling thread waits only through pump_poll() from now on; http/
 * calls it once per request, which pump_thread_requests() counts. */
void pump_thread_enable(void);
bool pump_thread_is_enabled(void);
unsigned pump_thread_requests(void);

/* Installs (fn) or removes (NULL) the calling thread's pump. */
void pump_thread_set(pump_fn fn);
bool pump_thread_is_busy(void);

/* poll(), doing the calling thread's own I/O meanwhile when it has any. */
int pump_poll(struct pollfd *fds, nfds_t n, int timeout_ms);

/*
 * For a producer about to signal 'fd' (an eventfd its consumer waits on):
 * true when the calling thread is that consumer, inside pump_poll() with
 * 'fd' among its fds — the producer's work is running in the consumer's
 * own pump.  pump_poll() then reports 'fd' readable itself and the
 * producer must not write to it: the write, the wake-up and the read that
 * clears it would be three system calls for a thread telling itself.
 */
bool pump_signal_here(int fd);

#endif
