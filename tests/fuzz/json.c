/* Fuzz target: the strict JSON parser, schema_parse_json(). Whatever it
 * accepts, json-c must serialise back into a document it accepts again. */
#include <stdio.h>

#include "schema.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *o = NULL, *again = NULL;
	const char *out;
	char err[256];

	if (schema_parse_json((const char *)data, size, &o, err, sizeof(err)) < 0)
		return 0;
	out = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (schema_parse_json(out, strlen(out), &again, err, sizeof(err)) < 0) {
		fprintf(stderr, "serialised form rejected: %s: %s\n", err, out);
		abort();
	}
	json_object_put(again);
	json_object_put(o);
	return 0;
}
