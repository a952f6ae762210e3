/*
 * log.c — see log.h.  The level is the one piece of process-wide state in
 * core/: it is written once by main() before threads start and only read
 * afterwards, so it needs no lock.
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

static enum log_level current = LOG_INFO;

int log_level_parse(const char *s)
{
	static const struct {
		const char *name;
		enum log_level lvl;
	} names[] = {
	    {"debug", LOG_DEBUG},  {"info", LOG_INFO},   {"warn", LOG_WARN},
	    {"warning", LOG_WARN}, {"error", LOG_ERROR}, {"critical", LOG_ERROR},
	    {"off", LOG_OFF},      {"none", LOG_OFF},
	};
	for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
		if (strcasecmp(s, names[i].name) == 0)
			return (int)names[i].lvl;
	return -1;
}

void log_set_level(enum log_level lvl)
{
	current = lvl;
}

enum log_level log_get_level(void)
{
	return current;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};
	if (lvl < current || lvl >= LOG_OFF)
		return;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
	                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                 tm.tm_sec, ts.tv_nsec / 1000000, tags[lvl]);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof line)
		vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}
