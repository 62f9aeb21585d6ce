/* Fuzz target: W3C trace context from the app. Any traceparent value is
 * either refused or read into a trace whose per-attempt traceparent reads
 * back with the same trace-id and flags; any tracestate is judged without
 * reading past its end. */
#include <errno.h>

#include "trace.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *value = fuzz_cstring(data, size), out[TRACE_PARENT_LEN + 1];
	struct trace t, back;
	struct rng rng;

	if (!value)
		return 0;
	memset(&t, 0, sizeof(t));
	rng_seed(&rng, size);
	if (trace_parse(value, &t) == 0) {
		trace_attempt(&t, &rng, out);
		if (strlen(out) != TRACE_PARENT_LEN || trace_parse(out, &back) != 0 ||
		    strcmp(back.trace_id, t.trace_id) != 0 || strcmp(back.flags, t.flags) != 0)
			abort();
	} else if (t.valid) {
		abort(); /* a refused value leaves no trace behind */
	}
	trace_state_ok(value);
	free(value);
	return 0;
}
