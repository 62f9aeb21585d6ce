/* A request's access log line (SPEC 6): one JSON line per request, at its
 * answer or, for a streamed one, at the body's end (request.h). */
#include "request.h"
#include "clock.h"
#include "engine.h"
#include "log.h"

/* How a streamed answer ended, for the access log. */
const char *request_end_name(enum engine_end_kind k)
{
	switch (k) {
	case ENGINE_END_COMPLETE:
		return "ok";
	case ENGINE_END_RESET_MID_BODY:
		return "reset_mid_body";
	case ENGINE_END_STREAM_TIMEOUT:
		return "stream_timeout";
	case ENGINE_END_CLIENT_GONE:
		return "client_gone";
	case ENGINE_END_SHUTDOWN:
		return "shutdown";
	}
	return "-";
}

/* The access log line; outcome is how a streamed answer ended (NULL for
 * an answer sent whole): its line comes at the body's end. */
void request_log_line(struct request *req, int status, const char *code, const char *outcome)
{
	struct logline *l;
	const char *cache;

	if (!req->cfg->log_access)
		return;
	l = log_begin(LOG_INFO, "request");
	if (!l)
		return;
	log_str(l, "profile", req->profile ? req->profile->name : "-");
	log_str(l, "route", req->route ? req->route->label : "-");
	log_str(l, "method", req->method_name);
	if (req->path)
		log_strn(l, "path", req->path, req->path_len);
	log_int(l, "status", status);
	log_str(l, "code", code);
	log_int(l, "attempts", engine_attempts(&req->engine));
	log_int(l, "hedges", engine_hedges(&req->engine));
	{
		size_t n;
		const struct history_entry *h = engine_history(&req->engine, &n);

		/* The endpoint of the last attempt (SPEC 4.11). */
		if (n > 0 && h[n - 1].endpoint[0])
			log_str(l, "endpoint", h[n - 1].endpoint);
	}
	{
		/* Rounded down from microseconds: upstream_ms never exceeds elapsed_ms. */
		uint64_t total = request_answer_us(req) - req->start_us;
		uint64_t up = engine_upstream_us(&req->engine);

		log_int(l, "elapsed_ms", (long long)(total / 1000));
		log_int(l, "upstream_ms", (long long)((up < total ? up : total) / 1000));
	}
	/* Time the rate limit held it back (SPEC 4.12), when it did. */
	if (engine_rate_wait_ms(&req->engine))
		log_int(l, "rate_limit_wait_ms", engine_rate_wait_ms(&req->engine));
	/* What the cache did (SPEC 4.13), on a route with one. */
	if ((cache = req->cache_said))
		log_str(l, "cache", cache);
	if (outcome) {
		log_str(l, "outcome", outcome);
		log_int(l, "bytes_out", (long long)req->bytes_out);
		log_int(l, "stream_ms",
			(long long)((clock_now_us() - request_answer_us(req)) / 1000));
	}
	log_str(l, "correlation_id", req->correlation[0] ? req->correlation : "-");
	log_str(l, "trace_id", req->trace.valid ? req->trace.trace_id : "-");
	log_end(l);
}
