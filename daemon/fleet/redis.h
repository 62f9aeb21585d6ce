/* A bounded, timed Redis client on a libevent loop (hiredis's adapter): a
 * command connection and a subscriber connection to one server, AUTH and
 * SELECT on connect, and a jittered backoff before connecting again when
 * either fails. Every command waits at most a timeout and every reply is
 * held to named limits. It knows nothing of what its user keeps in Redis. */
#ifndef BRACED_REDIS_H
#define BRACED_REDIS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

struct redis;
struct rng;

/* What failed when the client went down. */
enum redis_failure {
	REDIS_FAILED_CONNECT,   /* connecting, AUTH, SELECT, PING, or a connection dropped */
	REDIS_FAILED_SUBSCRIBE, /* AUTH or SUBSCRIBE refused, or the subscriber lost */
	REDIS_FAILED_TIMEOUT,   /* a command or the SUBSCRIBE slower than timeout_ms */
};

/* Where and how to connect. Every pointer is borrowed until the next
 * redis_connect() or redis_stop(). */
struct redis_setting {
	int unix_socket; /* connect to path, else to host and port */
	const char *path;
	const char *host;
	int port;
	const char *username; /* AUTH with both when set, else with the password alone */
	const char *password; /* NULL: no AUTH */
	unsigned db;          /* SELECTed when not 0 */
	uint32_t timeout_ms;  /* the longest wait for a reply */
	const char *channel;  /* SUBSCRIBEd to on every connect */
};

/* What the client tells its user; arg goes to every handler but reply. */
struct redis_handlers {
	/* Both connections work: AUTH, SELECT, PING and SUBSCRIBE answered. */
	void (*up)(void *arg);
	/* Both connections were dropped, for what and why (static text or
	 * hiredis's, never a secret, valid for the call); a reconnect is armed.
	 * Commands fail with -ENOTCONN until the next up. */
	void (*down)(void *arg, enum redis_failure what, const char *why);
	/* A command of the client's own (AUTH, SELECT or PING while
	 * connecting) could not be sent: err is -ENOBUFS or -EIO as for
	 * redis_vcommand(); the connection stays. */
	void (*unsent)(void *arg, int err);
	/* The reply to the command sent with cmd (borrowed for the call), or
	 * NULL when none will come (its connection was dropped). Each cmd
	 * comes back exactly once. */
	void (*reply)(void *cmd, const redisReply *r);
	/* A message published on the channel (len bytes at data, borrowed for
	 * the call), or data NULL for a push that is not a well-formed one. */
	void (*message)(void *arg, const char *data, size_t len);
	/* The wait before reconnect n (0 first); r is uniform in [0, 1). */
	uint32_t (*backoff_ms)(unsigned n, struct rng *rng);
	void *arg;
};

/* A client on base, not connected; rng (borrowed, outlives the client)
 * jitters the backoff; h is copied. NULL on OOM. */
struct redis *redis_new(struct event_base *base, struct rng *rng, const struct redis_handlers *h);

/* Connects now with s (copied; what it points to is borrowed, see struct
 * redis_setting), and again after a backoff whenever the client goes down,
 * until redis_stop(). The client must be stopped. */
void redis_connect(struct redis *r, const struct redis_setting *s);

/* Disconnects (commands waiting get their NULL reply), cancels a pending
 * reconnect and forgets the setting and the backoff. */
void redis_stop(struct redis *r);

/* Sends a command (hiredis's format and ap) on the command connection,
 * timed: when a reply takes longer than timeout_ms the client goes down.
 * Returns 0, and cmd (the caller's) comes back to h->reply; or -ENOTCONN,
 * -ENOBUFS (REDIS_MAX_PENDING commands wait already) or -EIO, and cmd stays
 * the caller's. */
int redis_vcommand(struct redis *r, void *cmd, const char *fmt, va_list ap);

/* Stops and frees; NULL is a no-op. */
void redis_free(struct redis *r);

#endif
