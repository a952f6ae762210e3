/*
 * log.h — leveled logging to stderr, one line per event, with a timestamp
 * and the level.  The level is set once at start-up (INFERENCE_LOG_LEVEL)
 * before any other thread runs; after that logging is thread-safe (one
 * fprintf per line, stdio's own lock).
 */
#ifndef BRG_CORE_LOG_H
#define BRG_CORE_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

/* Parses "DEBUG", "info", "WARNING", "error", "off"...; -1 when unknown. */
int log_level_parse(const char *s);
/* Call before starting threads. */
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
