/* A streamed answer's end (ENGINE_STREAMING): its body came whole or was
 * cut by the upstream, by timeouts.stream, by the app or by shutdown. */
#include "engine.h"
#include "engine_internal.h"

/* The streamed answer ends as kind says; count says whether it is
 * counted as the request's answer. */
static void end_stream(struct engine *e, struct engine_action *act, enum engine_end_kind kind,
		       int count)
{
	act->kind = ENGINE_DO_END;
	act->u.end = (struct engine_end){
		.kind = kind,
		.count = count,
		.has_code = e->stream_has_code,
		.code = e->stream_code,
	};
	engine_set_state(e, ENGINE_DONE);
}

/* ENGINE_STREAMING: the streamed attempt ended. Whole, the answer is
 * counted as it was relayed. Cut short, the app saw a truncation: an
 * upstream failure, for the breaker too (it judges the answer as the app
 * saw it, SPEC 4.8), so a flapping upstream still opens it. */
static void on_stream_end(struct engine *e, const struct engine_event *ev,
			  struct engine_action *act)
{
	const struct engine_result *res = &ev->u.attempt;
	enum outcome o;

	if (res->id != e->streaming_id)
		return;
	if (res->end == ATTEMPT_OK) {
		end_stream(e, act, ENGINE_END_COMPLETE, 1);
		return;
	}
	/* A reset or a read timeout as it came; braced's own failures (a
	 * resume refused) are a reset to the app all the same. */
	o = engine_outcome_of(e, res);
	if (!retry_is_failure(o, 0))
		o = OUTCOME_RESET;
	if (e->pending.set)
		engine_record_pending(e, ev->now_us, o);
	else
		guard_record(e->r.guard, o);
	end_stream(e, act, ENGINE_END_RESET_MID_BODY, 1);
	act->u.end.has_code = 1;
	act->u.end.code = PROBLEM_UPSTREAM_UNAVAILABLE;
}

/* ENGINE_STREAMING: the stream is cut by braced (timeouts.stream), the
 * app leaving or shutdown; only the first is counted, under the relayed
 * answer's code. */
static void cut_stream(struct engine *e, uint64_t now_us, struct engine_action *act,
		       enum engine_end_kind kind)
{
	uint32_t id = e->streaming_id;

	end_stream(e, act, kind, kind == ENGINE_END_STREAM_TIMEOUT);
	/* The upstream was sending well; braced or the app cut it. */
	engine_record_pending(e, now_us, OUTCOME_OK);
	act->cancel_ids[act->cancel++] = id;
}

/* ENGINE_STREAMING takes the streamed attempt's end, the stream timer,
 * the app leaving and shutdown; the total budget ended at the head. */
void engine_feed_streaming(struct engine *e, const struct engine_event *ev,
			   struct engine_action *act)
{
	switch (ev->kind) {
	case ENGINE_EV_ATTEMPT:
		on_stream_end(e, ev, act);
		break;
	case ENGINE_EV_TIMER:
		if (ev->u.timer.which == ENGINE_TIMER_STREAM)
			cut_stream(e, ev->now_us, act, ENGINE_END_STREAM_TIMEOUT);
		break;
	case ENGINE_EV_CLIENT_GONE:
		cut_stream(e, ev->now_us, act, ENGINE_END_CLIENT_GONE);
		break;
	case ENGINE_EV_DRAINING:
		cut_stream(e, ev->now_us, act, ENGINE_END_SHUTDOWN);
		break;
	case ENGINE_EV_ROUTED:
	case ENGINE_EV_HEAD:
	case ENGINE_EV_START_FAILED:
	case ENGINE_EV_BODY_END:
	default:
		break;
	}
}
