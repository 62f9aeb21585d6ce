/* Fuzz target: config_load_string() on arbitrary text. Loading must end in a
 * config or in positioned errors, never crash, leak or hang. The config path
 * lies in an empty private directory, so a relative ${file:} secret or a
 * "$ref" schema file names nothing; absolute ${file:} paths are read as the
 * daemon would. */
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include "config.h"
#include "route.h"
#include "fuzz.h"

static char dir[] = "/tmp/braced-fuzz-config.XXXXXX";
static char path[PATH_MAX];

static void remove_dir(void)
{
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (!mkdtemp(dir))
		abort();
	atexit(remove_dir);
	snprintf(path, sizeof(path), "%s/braced.yaml", dir);
	/* The seeds taken from the unit tests name these. */
	setenv("BRACED_UT_WEATHER_KEY", "k3y", 1);
	setenv("BRACED_UT_TOKEN", "tok123", 1);
	setenv("BRACED_UT_HOST", "127.0.0.1:9", 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config_errors errs;
	struct config *cfg;

	memset(&errs, 0, sizeof(errs));
	cfg = config_load_string(path, (const char *)data, size, &errs);
	if (cfg) {
		/* What the front does with a loaded config: find profiles, match routes. */
		for (size_t i = 0; i < cfg->nprofiles; i++) {
			const struct profile *p = &cfg->profiles[i];
			const struct route *r = NULL;

			if (config_find_profile(cfg, p->name, strlen(p->name)) != p)
				abort();
			if (route_match(p, METHOD_GET, "/v1/x/y", 7, &r) < 0)
				abort();
		}
		config_unref(cfg);
	}
	config_errors_release(&errs);
	return 0;
}
