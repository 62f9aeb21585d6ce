/* Suites of the braced unit tests, one per module (check_<module>.c):
 * the pure ones driven by table, the HTTP server, the reply writer and the
 * upstream pools over socketpairs and a loopback listener. check_main.c
 * runs them all under one SRunner; CK_RUN_SUITE=<name> runs one. */
#ifndef BRACED_TEST_SUITES_H
#define BRACED_TEST_SUITES_H

#include <check.h>

Suite *units_suite(void);
Suite *config_suite(void);
Suite *headers_suite(void);
Suite *problem_suite(void);
Suite *path_suite(void);
Suite *route_suite(void);
Suite *retry_suite(void);
Suite *budget_suite(void);
Suite *breaker_suite(void);
Suite *endpoints_suite(void);
Suite *gcra_suite(void);
Suite *pace_suite(void);
Suite *pacing_suite(void);
Suite *ratelimit_suite(void);
Suite *cachecontrol_suite(void);
Suite *cacheable_suite(void);
Suite *cacheentry_suite(void);
Suite *answers_suite(void);
Suite *schema_suite(void);
Suite *decode_suite(void);
Suite *http_suite(void);
Suite *stream_suite(void);
Suite *body_suite(void);
Suite *engine_suite(void);
Suite *trace_suite(void);
Suite *hedge_suite(void);
Suite *latency_suite(void);
Suite *fleet_suite(void);
Suite *guard_suite(void);
Suite *readfile_suite(void);
Suite *validate_suite(void);
Suite *strbuf_suite(void);
Suite *ytree_suite(void);
Suite *metrics_suite(void);
Suite *reply_suite(void);
Suite *pool_suite(void);
Suite *utf8_suite(void);
Suite *ascii_suite(void);
Suite *window_suite(void);
Suite *hold_suite(void);
Suite *chunked_suite(void);
Suite *registry_suite(void);
Suite *resolve_suite(void);
Suite *lru_suite(void);
Suite *tokenanswer_suite(void);
Suite *tokenrequest_suite(void);
Suite *tokenclock_suite(void);

#endif
