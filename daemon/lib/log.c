/* Log line building and writing. JSON lines carry ts, level, msg and the
 * fields in the order given; text lines are "TS LEVEL msg key=value". */
#include "log.h"
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192

struct logline {
	struct strbuf buf;
	int busy;
};

static enum log_format log_format = LOG_FORMAT_JSON;
static enum log_level log_level = LOG_INFO;
static struct logline line;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_setup(enum log_format format, enum log_level level)
{
	log_format = format;
	log_level = level;
}

int log_enabled(enum log_level level)
{
	return level <= log_level;
}

struct logline *log_begin(enum log_level level, const char *msg)
{
	static time_t cached_sec = -1;
	static char when[40];
	struct timespec ts;
	struct tm tm;

	if (!log_enabled(level) || line.busy)
		return NULL;
	line.busy = 1;
	if (!line.buf.max)
		strbuf_init(&line.buf, LOG_LINE_MAX);
	line.buf.len = 0;
	line.buf.failed = 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	/* Formatting the date costs more than the rest of a line: once a second. */
	if (ts.tv_sec != cached_sec) {
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		cached_sec = ts.tv_sec;
	}
	if (log_format == LOG_FORMAT_JSON) {
		strbuf_addf(&line.buf, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":", when,
			    ts.tv_nsec / 1000000, level_names[level]);
		strbuf_add_json_string(&line.buf, msg, strlen(msg));
	} else {
		strbuf_addf(&line.buf, "%s.%03ldZ %s %s", when, ts.tv_nsec / 1000000,
			    level_names[level], msg);
	}
	return &line;
}

void log_strn(struct logline *l, const char *key, const char *value, size_t len)
{
	if (!l)
		return;
	if (log_format == LOG_FORMAT_JSON) {
		strbuf_addf(&l->buf, ",\"%s\":", key);
		strbuf_add_json_string(&l->buf, value, len);
	} else {
		strbuf_addf(&l->buf, " %s=", key);
		/* Quote when the value would split the line into more fields. */
		if (memchr(value, ' ', len) || memchr(value, '"', len) || len == 0)
			strbuf_add_json_string(&l->buf, value, len);
		else
			strbuf_add(&l->buf, value, len);
	}
}

void log_str(struct logline *l, const char *key, const char *value)
{
	if (value)
		log_strn(l, key, value, strlen(value));
}

void log_int(struct logline *l, const char *key, long long value)
{
	if (!l)
		return;
	if (log_format == LOG_FORMAT_JSON)
		strbuf_addf(&l->buf, ",\"%s\":%lld", key, value);
	else
		strbuf_addf(&l->buf, " %s=%lld", key, value);
}

void log_end(struct logline *l)
{
	const char *p;
	size_t left;

	if (!l)
		return;
	if (log_format == LOG_FORMAT_JSON)
		strbuf_add(&l->buf, "}", 1);
	strbuf_add(&l->buf, "\n", 1);
	if (l->buf.failed) {
		static const char cut[] = "log line too long, dropped\n";

		p = cut;
		left = sizeof(cut) - 1;
	} else {
		p = l->buf.data;
		left = l->buf.len;
	}
	while (left > 0) {
		ssize_t n = write(STDERR_FILENO, p, left);

		if (n <= 0)
			break;
		p += n;
		left -= (size_t)n;
	}
	l->busy = 0;
}

void log_msgf(enum log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_end(log_begin(level, msg));
}
