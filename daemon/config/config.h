/* The immutable configuration: YAML → struct config, validated with file,
 * line and column for every error, with defaults merged key by key into each
 * profile and route (route > profile > defaults > built-in). */
#ifndef BRACED_CONFIG_H
#define BRACED_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#include "log.h"
#include "method.h"
#include "policy.h"
#include "trace.h"

/* Limits on what the configuration itself may declare. */
#define CONFIG_MAX_LISTENERS 16
#define CONFIG_MAX_PROFILES 1024
#define CONFIG_MAX_ROUTES 256
#define CONFIG_MAX_HEADERS 64
#define CONFIG_MAX_ERRORS 100
#define CONFIG_MAX_WARNINGS 8
#define CONFIG_MAX_SECRET_FILE 65536
#define CONFIG_HEADER_NAME_MAX POLICY_HEADER_NAME_MAX
#define CONFIG_MAX_STRING 8192
/* limits.stream_buffer: below 64 KiB more answers pause at their head for
 * nothing; above 8 MiB a stream's queue nears what the HTTP server takes
 * (HTTP_STREAM_QUEUED_MAX). */
#define CONFIG_STREAM_BUFFER_MIN (64 * 1024)
#define CONFIG_STREAM_BUFFER_MAX (8 * 1024 * 1024)
/* dns.nameservers given at most. */
#define CONFIG_MAX_NAMESERVERS 8
/* A profile's addresses: as many as it can have endpoints. */
#define CONFIG_MAX_ADDRESSES ENDPOINTS_MAX

enum schema_mode { SCHEMA_MODE_OFF, SCHEMA_MODE_REPORT, SCHEMA_MODE_ENFORCE };

struct header_setting {
	char *name;
	char *value;
	int secret; /* value came from ${...}: never log or show it */
};

struct schema;

struct schema_setting {
	enum schema_mode mode;
	struct json_object *query; /* JSON Schema documents, or NULL */
	struct json_object *body;
	struct schema *query_schema; /* compiled from query and body */
	struct schema *body_schema;
	uint8_t statuses[600]; /* response statuses validated */
	unsigned line, col;    /* where the schema was written */
};

struct route {
	char *label;             /* "GET /v1/weather" as written */
	int any_method;          /* '*': the route matches every method */
	enum http_method method; /* the one it matches otherwise */
	/* The normalized path segments (path.h, folded with match_case:
	 * insensitive); "{x}" matches one, a final "**" the rest. */
	char **segments;
	size_t nsegments;
	int rest; /* pattern ends with / ** */
	struct policy policy;
	struct schema_setting request, response;
};

struct tls_setting {
	int verify;
	char *ca_file;      /* NULL: the system's default */
	int ca_file_secret; /* came from ${...}: shown as <redacted> */
};

struct profile {
	char *name;
	char *upstream; /* scheme://host[:port][/base], no trailing slash */
	int upstream_secret;
	char *host;    /* the upstream URL's host, without brackets */
	uint16_t port; /* its port, or the scheme's (80, 443) */
	/* "ADDR:PORT" when host is a numeric address (config_endpoint_text),
	 * else "": the endpoint libcurl dials with no CONNECT_TO at all. */
	char url_endpoint[ENDPOINT_NAME_MAX];
	/* addresses: the endpoints, "ADDR:PORT" as inet_ntop writes ADDR
	 * (IPv6 in brackets), given instead of looking the host up; none:
	 * the host is looked up (SPEC 4.11). */
	char **addresses;
	size_t naddresses;
	struct header_setting *headers;
	size_t nheaders;
	struct tls_setting tls;
	int routes_only;
	int fold_case; /* match_case: insensitive */
	struct route *routes;
	size_t nroutes;
	struct policy policy;
	unsigned index; /* position in config->profiles */
};

enum listener_kind { LISTENER_TCP, LISTENER_UNIX };

struct listener_setting {
	enum listener_kind kind;
	char *address; /* as written */
	char *host;    /* TCP: host without brackets */
	uint16_t port; /* TCP */
	char *path;    /* unix: filesystem path */
};

/* What fleet mode shares (fleet.share), as bits. */
enum fleet_share {
	FLEET_SHARE_COOLDOWN = 1,
	FLEET_SHARE_BREAKER = 2,
	FLEET_SHARE_BUDGET = 4,
	FLEET_SHARE_EJECTIONS = 8,
};
/* Longest fleet.key_prefix. */
#define CONFIG_FLEET_PREFIX_MAX 64
/* fleet.secret: from 16 bytes (a shorter key is guessable) to 1 KiB. */
#define CONFIG_FLEET_SECRET_MIN 16
#define CONFIG_FLEET_SECRET_MAX 1024

/* fleet: state shared between instances through Redis (SPEC 4.9). */
struct fleet_setting {
	int enabled;      /* redis is not "off" */
	char *redis;      /* as written (no secret in it: a password goes in password) */
	int unix_socket;  /* unix:/path */
	char *host;       /* TCP: a numeric address (localhost becomes 127.0.0.1) */
	uint16_t port;    /* TCP */
	char *path;       /* unix: the socket's path */
	uint32_t db;      /* SELECTed after connecting; 0 = none */
	char *username;   /* the ACL user AUTH names; NULL: the default user */
	char *password;   /* NULL when none; always a secret: never logged or shown */
	char *secret;     /* signs what the fleet shares; NULL when off ("");
			     always a secret: never logged or shown */
	char *key_prefix; /* "braced:" */
	uint32_t share;   /* enum fleet_share bits */
	uint32_t timeout_ms;
	uint32_t sync_interval_ms;
};

/* 1 when a and b connect to the same Redis in the same way and sign alike
 * (a reload that changes any of it reconnects). */
int config_fleet_equal(const struct fleet_setting *a, const struct fleet_setting *b);
struct config;
/* 1 when a profile or a route of cfg shares its rate_limit through the
 * fleet (rate_limit.share: fleet, SPEC 4.12). */
int config_shares_rate(const struct config *cfg);

/* Copies src (borrowed) into dst, its strings and secrets duplicated (dst
 * owns them, released with config_fleet_release). Returns 0, or -ENOMEM
 * with dst holding nothing. */
int config_fleet_copy(struct fleet_setting *dst, const struct fleet_setting *src);

/* Frees what s owns (secrets zeroed first) and zeroes s. */
void config_fleet_release(struct fleet_setting *s);

/* Overwrites the secret string s with zeroes and frees it (taken); NULL is
 * a no-op. */
void config_secret_free(char *s);

/* dns: how upstream names become endpoints (SPEC 4.11). */
struct dns_setting {
	/* "IP" or "IP:PORT" ("[IPV6]:PORT"), as written; none: /etc/resolv.conf */
	char *nameservers[CONFIG_MAX_NAMESERVERS];
	size_t nnameservers;
	char *hosts_file; /* consulted first; NULL: none ("") */
};

/* 1 when a and b look names up alike (a reload that changes it builds a
 * new resolver). */
int config_dns_equal(const struct dns_setting *a, const struct dns_setting *b);

/* cache: the store of kept answers (SPEC 4.13); max_bytes 0: none. */
struct cache_setting {
	uint64_t max_bytes;
	uint64_t max_entry; /* a larger answer is relayed, not kept */
};

struct config {
	char *path;
	struct listener_setting listeners[CONFIG_MAX_LISTENERS];
	size_t nlisteners;
	struct listener_setting admin;
	int admin_enabled;
	uint32_t shutdown_grace_ms;
	enum log_format log_format;
	enum log_level log_level;
	int log_access;
	uint64_t max_request_body;
	uint64_t max_response_body;
	uint64_t max_header_size;
	uint64_t max_validated_body; /* most bytes a schema route validates */
	/* Per streamed body: bytes queued for a slow reader before the
	 * sender is paused; also the part of an answer kept before braced
	 * decides on it (SPEC 3.1). */
	uint64_t stream_buffer;
	uint64_t retry_buffer; /* request bodies up to this are held for retries */
	uint64_t max_buffered; /* all bodies held whole at once */
	uint32_t max_connections;
	uint32_t max_inflight;
	uint32_t header_timeout_ms; /* the whole request head, from its first byte */
	uint32_t body_timeout_ms;   /* the whole request body */
	uint32_t idle_timeout_ms;   /* between requests on a keep-alive connection */
	struct fleet_setting fleet;
	struct dns_setting dns;
	struct cache_setting cache;
	struct policy defaults;
	struct profile *profiles; /* sorted by name */
	size_t nprofiles;
	unsigned refs;
};

/* Errors found while loading: every one with its position, already formatted
 * as "FILE:LINE:COL: message". Warnings, "FILE:LINE:COL: warning: message",
 * do not fail the load. */
struct config_errors {
	char *lines[CONFIG_MAX_ERRORS];
	unsigned line[CONFIG_MAX_ERRORS], col[CONFIG_MAX_ERRORS];
	size_t count;
	size_t dropped; /* errors beyond CONFIG_MAX_ERRORS */
	char *warnings[CONFIG_MAX_WARNINGS];
	size_t nwarnings;
};

/* Loads and validates the file at path. Returns a config with one reference
 * (the caller's), or NULL with every problem in errs (the caller releases errs
 * with config_errors_release). */
struct config *config_load(const char *path, struct config_errors *errs);

/* Same from a string; path is only used in messages and for ${file:} paths
 * relative to it. */
struct config *config_load_string(const char *path, const char *text, size_t len,
				  struct config_errors *errs);

void config_errors_release(struct config_errors *errs);

/* Reference counting: requests in flight hold the config they started with. */
struct config *config_ref(struct config *cfg);
void config_unref(struct config *cfg);

/* 1 when a and b (borrowed) declare the same app listeners in the same
 * order, by address (port 0 included), else 0. */
int config_listen_equal(const struct config *a, const struct config *b);
/* 1 when a and b declare the same admin listener, or both have it off. */
int config_admin_equal(const struct config *a, const struct config *b);

/* cfg's `listen` addresses as written, "ADDR, ADDR", in buf (len bytes,
 * cut to fit); "none" when there is none. */
void config_listen_text(const struct config *cfg, char *buf, size_t len);

/* "ADDR:PORT" of a numeric host (IPv4, or IPv6 with or without brackets)
 * as inet_ntop writes it (IPv6 in brackets), in out (size bytes): the one
 * way an endpoint is named. 0, or -EINVAL: not numeric, or too long. */
int config_endpoint_text(const char *host, size_t host_len, unsigned port, char *out, size_t size);

/* Profile by name (len bytes, not NUL-terminated), or NULL (borrowed). */
const struct profile *config_find_profile(const struct config *cfg, const char *name, size_t len);

/* The built-in defaults of SPEC 2 (used before `defaults` is applied). */
void config_builtin_policy(struct policy *ret);

#endif
