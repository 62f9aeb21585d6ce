/* Entry point of the unit tests: runs every suite of suites.h in one
 * SRunner with CK_NORMAL output and exits non-zero when any test fails.
 * CK_FORK=no in the environment runs them in-process (for leak checking). */
#include <stdlib.h>

#include "suites.h"

int main(void)
{
	SRunner *sr = srunner_create(units_suite());
	int failed;

	srunner_add_suite(sr, config_suite());
	srunner_add_suite(sr, headers_suite());
	srunner_add_suite(sr, problem_suite());
	srunner_add_suite(sr, path_suite());
	srunner_add_suite(sr, route_suite());
	srunner_add_suite(sr, retry_suite());
	srunner_add_suite(sr, budget_suite());
	srunner_add_suite(sr, breaker_suite());
	srunner_add_suite(sr, endpoints_suite());
	srunner_add_suite(sr, gcra_suite());
	srunner_add_suite(sr, pace_suite());
	srunner_add_suite(sr, pacing_suite());
	srunner_add_suite(sr, ratelimit_suite());
	srunner_add_suite(sr, cachecontrol_suite());
	srunner_add_suite(sr, cacheable_suite());
	srunner_add_suite(sr, cacheentry_suite());
	srunner_add_suite(sr, answers_suite());
	srunner_add_suite(sr, schema_suite());
	srunner_add_suite(sr, decode_suite());
	srunner_add_suite(sr, http_suite());
	srunner_add_suite(sr, stream_suite());
	srunner_add_suite(sr, body_suite());
	srunner_add_suite(sr, engine_suite());
	srunner_add_suite(sr, trace_suite());
	srunner_add_suite(sr, hedge_suite());
	srunner_add_suite(sr, latency_suite());
	srunner_add_suite(sr, fleet_suite());
	srunner_add_suite(sr, guard_suite());
	srunner_add_suite(sr, readfile_suite());
	srunner_add_suite(sr, validate_suite());
	srunner_add_suite(sr, strbuf_suite());
	srunner_add_suite(sr, ytree_suite());
	srunner_add_suite(sr, metrics_suite());
	srunner_add_suite(sr, reply_suite());
	srunner_add_suite(sr, pool_suite());
	srunner_add_suite(sr, utf8_suite());
	srunner_add_suite(sr, ascii_suite());
	srunner_add_suite(sr, window_suite());
	srunner_add_suite(sr, hold_suite());
	srunner_add_suite(sr, chunked_suite());
	srunner_add_suite(sr, registry_suite());
	srunner_add_suite(sr, resolve_suite());
	srunner_add_suite(sr, lru_suite());
	srunner_add_suite(sr, tokenanswer_suite());
	srunner_add_suite(sr, tokenrequest_suite());
	srunner_add_suite(sr, tokenclock_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
