/* Log lines on stderr, JSON or text, one write(2) per line. The daemon is
 * single-threaded, so one line is built at a time:
 *   struct logline *l = log_begin(LOG_INFO, "listening");
 *   log_str(l, "listen", addr); log_end(l);
 * log_begin returns NULL when the level is filtered; every call takes NULL. */
#ifndef BRACED_LOG_H
#define BRACED_LOG_H

#include <stddef.h>

enum log_format { LOG_FORMAT_JSON, LOG_FORMAT_TEXT };
enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

struct logline;

void log_setup(enum log_format format, enum log_level level);
int log_enabled(enum log_level level);

struct logline *log_begin(enum log_level level, const char *msg);
void log_str(struct logline *l, const char *key, const char *value);
void log_strn(struct logline *l, const char *key, const char *value, size_t len);
void log_int(struct logline *l, const char *key, long long value);
void log_end(struct logline *l);

/* One line with a formatted message and no fields. */
void log_msgf(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
