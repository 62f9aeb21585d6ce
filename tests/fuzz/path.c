/* Fuzz target: route matching with path normalization. The input is a raw
 * request path (everything before '?'); it is normalized with and without
 * case folding and matched against a profile whose routes use every kind of
 * pattern. Normalizing twice must change nothing, and a path is refused or
 * routed the same way whether it arrives raw or normalized. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "route.h"
#include "path.h"
#include "fuzz.h"

static struct config *cfg;

static const char yaml[] = "listen: 127.0.0.1:0\n"
			   "admin: off\n"
			   "profiles:\n"
			   "  exact:\n"
			   "    upstream: http://127.0.0.1:9\n"
			   "    routes:\n"
			   "      - match: GET /v1/weather\n"
			   "      - match: \"* /v1/users/{id}/orders\"\n"
			   "      - match: POST /v1/files/**\n"
			   "      - match: GET /caf%C3%A9/x\n"
			   "      - match: GET /\n"
			   "  folded:\n"
			   "    upstream: http://127.0.0.1:9\n"
			   "    match_case: insensitive\n"
			   "    routes:\n"
			   "      - match: GET /V1/Weather\n"
			   "      - match: \"* /v1/{x}/**\"\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct config_errors errs;

	(void)argc;
	(void)argv;
	memset(&errs, 0, sizeof(errs));
	cfg = config_load_string("/nonexistent/braced.yaml", yaml, sizeof(yaml) - 1, &errs);
	if (!cfg)
		abort();
	config_errors_release(&errs);
	return 0;
}

static void check(const char *raw, size_t len, int fold)
{
	size_t outsize = len + 2, n1 = 0, n2 = 0;
	char *a = malloc(outsize), *b = malloc(outsize);
	int r;

	if (!a || !b)
		goto out;
	r = path_normalize(raw, len, fold, a, outsize, &n1);
	if (r != 0 && r != -EINVAL)
		abort(); /* len + 1 bytes are always enough */
	if (r == 0) {
		if (n1 > len + 1 || strlen(a) != n1)
			abort();
		if (path_normalize(a, n1, fold, b, outsize, &n2) != 0 || n2 != n1 ||
		    memcmp(a, b, n1) != 0)
			abort(); /* normal form is a fixed point */
	}
	for (size_t i = 0; i < cfg->nprofiles; i++) {
		const struct profile *p = &cfg->profiles[i];
		const struct route *ra = NULL, *rb = NULL;
		int ea = route_match(p, METHOD_GET, raw, len, &ra);

		if (ea != 0 && ea != -EINVAL && ea != -ENOSPC)
			abort();
		if (r == 0 && fold == p->fold_case && ea == 0) {
			/* The normalized spelling routes where the raw one did. */
			if (route_match(p, METHOD_GET, a, n1, &rb) != 0 || ra != rb)
				abort();
		}
	}
out:
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *raw = malloc(size + 1);

	if (!raw)
		return 0;
	/* Paths reach routing with their leading '/'. */
	raw[0] = '/';
	memcpy(raw + 1, data, size);
	check(raw, size + 1, 0);
	check(raw, size + 1, 1);
	free(raw);
	return 0;
}
