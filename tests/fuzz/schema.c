/* Fuzz target: schema_compile() then schema_validate(). The input is a
 * schema document, a NUL byte, then the instance; without a NUL the
 * document is validated against itself. Both are parsed with the strict
 * parser; no file may be read (base_dir NULL). Errors are fine, crashes,
 * leaks and hangs are not. */
#include <errno.h>

#include "schema.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *nul = memchr(data, '\0', size);
	size_t slen = nul ? (size_t)(nul - text) : size;
	struct json_object *doc = NULL, *instance = NULL;
	struct schema_result res;
	struct schema *s;
	char err[256];

	if (schema_parse_json(text, slen, &doc, err, sizeof(err)) < 0)
		return 0;
	if (nul && schema_parse_json(nul + 1, size - slen - 1, &instance, err, sizeof(err)) < 0)
		goto out;
	s = schema_compile(doc, NULL, err, sizeof(err));
	if (s) {
		int r = schema_validate(s, nul ? instance : doc, &res);

		if (r < 0 && r != -ENOMEM)
			abort();
		if (res.count > SCHEMA_MAX_VIOLATIONS || res.count > res.total ||
		    (r == 0) != (res.total == 0))
			abort();
		schema_free(s);
	}
out:
	json_object_put(instance);
	json_object_put(doc);
	return 0;
}
