/* The line for limits.max_buffered (memory.h). */
#include "memory.h"
#include "exchange.h"
#include "upstream.h"

#include <errno.h>
#include <event2/event.h>

static void leave_line(struct request *req)
{
	struct request_env *env = req->env;

	if (!req->in_line)
		return;
	TAILQ_REMOVE(&env->hold_line, req, hold_link);
	hold_leave(&env->hold);
	req->in_line = 0;
	req->hold_call = NULL;
	/* The one behind may fit where this one did not. */
	if (!TAILQ_EMPTY(&env->hold_line))
		event_active(&env->hold_wake, EV_TIMEOUT, 0);
}

int memory_reserve(struct request *req, uint64_t n, struct call *call,
		   void (*granted)(struct request *req))
{
	struct request_env *env = req->env;
	int rc;

	if (req->in_line)
		return -EBUSY; /* one place in line per request */
	rc = hold_take(&env->hold, n);

	if (rc == 0) {
		req->held += n;
		return 0;
	}
	if (rc != -ENOSPC)
		return rc;
	hold_wait(&env->hold);
	TAILQ_INSERT_TAIL(&env->hold_line, req, hold_link);
	req->in_line = 1;
	req->hold_want = n;
	req->hold_call = call;
	req->hold_granted = granted;
	return 1;
}

int memory_try(struct request *req, uint64_t n)
{
	int rc = hold_take(&req->env->hold, n);

	if (rc == 0)
		req->held += n;
	return rc;
}

void memory_give(struct request *req, uint64_t n)
{
	struct request_env *env = req->env;

	if (n > req->held)
		n = req->held;
	if (!n)
		return;
	hold_give(&env->hold, n);
	req->held -= n;
	/* Served from the loop: the caller is in the middle of something. */
	if (!TAILQ_EMPTY(&env->hold_line))
		event_active(&env->hold_wake, EV_TIMEOUT, 0);
}

void memory_forget_call(struct request *req)
{
	leave_line(req);
}

void memory_release(struct request *req)
{
	leave_line(req);
	memory_give(req, req->held);
}

/* Serves the line in order while its first fits. */
static void on_hold_wake(evutil_socket_t fd, short what, void *arg)
{
	struct request_env *env = arg;
	struct request *req;

	(void)fd;
	(void)what;
	while ((req = TAILQ_FIRST(&env->hold_line)) &&
	       hold_take_first(&env->hold, req->hold_want) == 0) {
		struct call *call = req->hold_call;

		TAILQ_REMOVE(&env->hold_line, req, hold_link);
		req->in_line = 0;
		req->held += req->hold_want;
		req->hold_call = NULL;
		if (call) {
			req->answer_held += req->hold_want;
			call_hold(call);
		} else if (req->hold_granted)
			req->hold_granted(req);
	}
}

void memory_env_init(struct request_env *env, uint64_t max_buffered)
{
	hold_init(&env->hold, max_buffered);
	TAILQ_INIT(&env->hold_line);
	event_assign(&env->hold_wake, env->base, -1, 0, on_hold_wake, env);
}

void memory_env_done(struct request_env *env)
{
	event_del(&env->hold_wake);
}

void memory_env_set_max(struct request_env *env, uint64_t max_buffered)
{
	hold_set_max(&env->hold, max_buffered);
	if (!TAILQ_EMPTY(&env->hold_line))
		event_active(&env->hold_wake, EV_TIMEOUT, 0);
}
