/* Runs the official JSON-Schema-Test-Suite against daemon/schema/: every
 * case of every *.json file in one draft's directory (not refRemote.json,
 * which needs a web server), then those of its optional/ and
 * optional/format/ directories (formats asserted, braced's default).
 * Prints each failing case, "draft7 suite: N/M passed" and
 * "draft7 optional suite: N/M passed"; exits 1 unless all passed.
 * Usage: schema_suite [DIR] (default: the Debian package's draft7 tests).
 * schema_suite --bench [N] instead times N parse+validate rounds of a 1 KiB
 * weather body against SPEC 2's response schema, then validate rounds
 * against the same schema with formats, and prints CPU us each. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema.h"

#define DEFAULT_DIR "/usr/share/json-schema-test-suite/tests/draft7"
#define MAX_FILE_SIZE (8 * 1024 * 1024)

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads and parses path; returns NULL with a message on stderr. */
static struct json_object *load(const char *path)
{
	struct json_object *doc = NULL;
	char err[256];
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = malloc(MAX_FILE_SIZE);
	n = buf ? fread(buf, 1, MAX_FILE_SIZE, f) : 0;
	fclose(f);
	if (!buf || n == MAX_FILE_SIZE) {
		fprintf(stderr, "%s: cannot read\n", path);
		free(buf);
		return NULL;
	}
	if (schema_parse_json(buf, n, &doc, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", path, err);
		doc = NULL;
	}
	free(buf);
	return doc;
}

static const char *str_field(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "?";
}

/* Runs one file's groups; adds to *passed and *total. */
static void run_file(const char *dir, const char *name, int *passed, int *total)
{
	struct json_object *groups, *group, *tests, *test, *schema, *data, *valid;
	struct schema_result res;
	struct schema *s;
	char path[4096], err[512];
	size_t g, t, ng, nt;
	int want, got;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	groups = load(path);
	if (!groups || !json_object_is_type(groups, json_type_array)) {
		printf("FAIL %s: not a test file\n", name);
		(*total)++;
		json_object_put(groups);
		return;
	}
	ng = json_object_array_length(groups);
	for (g = 0; g < ng; g++) {
		group = json_object_array_get_idx(groups, g);
		if (!json_object_object_get_ex(group, "tests", &tests))
			continue;
		json_object_object_get_ex(group, "schema", &schema);
		nt = json_object_array_length(tests);
		s = schema_compile(schema, dir, err, sizeof(err));
		for (t = 0; t < nt; t++) {
			test = json_object_array_get_idx(tests, t);
			json_object_object_get_ex(test, "data", &data);
			json_object_object_get_ex(test, "valid", &valid);
			want = json_object_get_boolean(valid);
			(*total)++;
			if (!s) {
				printf("FAIL %s: %s / %s: schema does not compile: %s\n", name,
				       str_field(group, "description"),
				       str_field(test, "description"), err);
				continue;
			}
			got = schema_validate(s, data, &res) == 0;
			if (got == want) {
				(*passed)++;
				continue;
			}
			printf("FAIL %s: %s / %s: expected %s, got %s", name,
			       str_field(group, "description"), str_field(test, "description"),
			       want ? "valid" : "invalid", got ? "valid" : "invalid");
			if (res.count)
				printf(" (%s at '%s': %s)", res.v[0].keyword, res.v[0].pointer,
				       res.v[0].message);
			printf("\n");
		}
		schema_free(s);
	}
	json_object_put(groups);
}

static const char bench_schema[] =
    "{\"type\": \"object\","
    " \"required\": [\"city\", \"temperature\", \"condition\", \"source_latency_ms\"],"
    " \"properties\": {\"city\": {\"type\": \"string\"}, \"temperature\": {\"type\": \"number\"},"
    " \"condition\": {\"type\": \"string\"},"
    " \"source_latency_ms\": {\"type\": \"integer\", \"minimum\": 0}}}";

/* The same schema with two of the body's strings under formats. */
static const char bench_format_schema[] =
    "{\"type\": \"object\","
    " \"required\": [\"city\", \"temperature\", \"condition\", \"source_latency_ms\"],"
    " \"properties\": {\"city\": {\"type\": \"string\"}, \"temperature\": {\"type\": \"number\"},"
    " \"condition\": {\"type\": \"string\"},"
    " \"source_latency_ms\": {\"type\": \"integer\", \"minimum\": 0},"
    " \"observed_at\": {\"type\": \"string\", \"format\": \"date-time\"},"
    " \"source\": {\"type\": \"string\", \"format\": \"hostname\"}}}";

static const char bench_body[] =
    "{\"city\": \"Oslo\", \"temperature\": -3.5, \"condition\": \"light snow\","
    " \"source_latency_ms\": 42, \"humidity\": 0.87, \"wind\": {\"speed_ms\": 5.2,"
    " \"gust_ms\": 9.1, \"direction_deg\": 220}, \"station\": {\"id\": \"NO-OSL-0031\","
    " \"name\": \"Oslo Blindern\", \"lat\": 59.9423, \"lon\": 10.72, \"elevation_m\": 94},"
    " \"observed_at\": \"2024-01-15T08:00:00Z\", \"hourly\": ["
    "{\"t\": \"09:00\", \"temperature\": -3.1, \"condition\": \"snow\", \"precip_mm\": 0.4},"
    "{\"t\": \"10:00\", \"temperature\": -2.8, \"condition\": \"snow\", \"precip_mm\": 0.6},"
    "{\"t\": \"11:00\", \"temperature\": -2.2, \"condition\": \"cloudy\", \"precip_mm\": 0.1},"
    "{\"t\": \"12:00\", \"temperature\": -1.9, \"condition\": \"cloudy\", \"precip_mm\": 0.0},"
    "{\"t\": \"13:00\", \"temperature\": -1.5, \"condition\": \"cloudy\", \"precip_mm\": 0.0},"
    "{\"t\": \"14:00\", \"temperature\": -1.4, \"condition\": \"partly cloudy\","
    " \"precip_mm\": 0.0},"
    "{\"t\": \"15:00\", \"temperature\": -1.8, \"condition\": \"partly cloudy\","
    " \"precip_mm\": 0.0},"
    "{\"t\": \"16:00\", \"temperature\": -2.6, \"condition\": \"clear\", \"precip_mm\": 0.0}],"
    " \"alerts\": [{\"level\": \"yellow\", \"text\": \"Icy roads in the morning\"}],"
    " \"units\": {\"temperature\": \"C\", \"wind\": \"m/s\", \"precip\": \"mm\"},"
    " \"source\": \"met.no\", \"cached\": false, \"ttl_s\": 600}";

static double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU per parse, per parse+validate and per validate of bench_body. */
static int bench(long n)
{
	size_t len = sizeof(bench_body) - 1;
	struct json_object *doc, *o;
	struct schema_result res;
	double t0, t1, t2, t3;
	struct schema *s;
	char err[256];
	long i, invalid = 0;

	if (n <= 0 ||
	    schema_parse_json(bench_schema, sizeof(bench_schema) - 1, &doc, err, sizeof(err)) < 0)
		return 2;
	s = schema_compile(doc, NULL, err, sizeof(err));
	json_object_put(doc);
	if (!s)
		return 2;
	t0 = cpu_seconds();
	for (i = 0; i < n; i++) {
		if (schema_parse_json(bench_body, len, &o, err, sizeof(err)) < 0)
			return 2;
		json_object_put(o);
	}
	t1 = cpu_seconds();
	for (i = 0; i < n; i++) {
		if (schema_parse_json(bench_body, len, &o, err, sizeof(err)) < 0)
			return 2;
		invalid += schema_validate(s, o, &res) != 0;
		json_object_put(o);
	}
	t2 = cpu_seconds();
	if (schema_parse_json(bench_body, len, &o, err, sizeof(err)) < 0)
		return 2;
	for (i = 0; i < n; i++)
		invalid += schema_validate(s, o, &res) != 0;
	t3 = cpu_seconds();
	schema_free(s);
	printf(
	    "body %zu bytes, %ld rounds: parse %.2f us, parse+validate %.2f us, validate %.3f us "
	    "(CPU per round)\n",
	    len, n, (t1 - t0) / (double)n * 1e6, (t2 - t1) / (double)n * 1e6,
	    (t3 - t2) / (double)n * 1e6);
	if (schema_parse_json(bench_format_schema, sizeof(bench_format_schema) - 1, &doc, err,
			      sizeof(err)) < 0) {
		json_object_put(o);
		return 2;
	}
	s = schema_compile(doc, NULL, err, sizeof(err));
	json_object_put(doc);
	if (!s) {
		json_object_put(o);
		return 2;
	}
	t0 = cpu_seconds();
	for (i = 0; i < n; i++)
		invalid += schema_validate(s, o, &res) != 0;
	t1 = cpu_seconds();
	json_object_put(o);
	schema_free(s);
	printf("with formats (a date-time, a hostname): validate %.3f us (CPU per round)\n",
	       (t1 - t0) / (double)n * 1e6);
	return invalid ? 1 : 0;
}

/* Runs every test file of dir (not its subdirectories); -1 when dir
 * cannot be listed. */
static int run_dir(const char *dir, int *passed, int *total)
{
	char **names = NULL, **grown;
	size_t n = 0, i, len;
	struct dirent *de;
	DIR *d;

	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		len = strlen(de->d_name);
		if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0 ||
		    strcmp(de->d_name, "refRemote.json") == 0)
			continue;
		grown = realloc(names, (n + 1) * sizeof(*names));
		if (!grown || !(grown[n] = strdup(de->d_name))) {
			fprintf(stderr, "out of memory\n");
			exit(1);
		}
		names = grown;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_names);
	for (i = 0; i < n; i++) {
		run_file(dir, names[i], passed, total);
		free(names[i]);
	}
	free(names);
	return 0;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : DEFAULT_DIR;
	int passed = 0, total = 0, opt_passed = 0, opt_total = 0, bad = 0;
	char sub[4096];

	if (argc > 1 && strcmp(argv[1], "--bench") == 0)
		return bench(argc > 2 ? atol(argv[2]) : 100000);
	bad |= run_dir(dir, &passed, &total) < 0;
	printf("draft7 suite: %d/%d passed\n", passed, total);
	snprintf(sub, sizeof(sub), "%s/optional", dir);
	bad |= run_dir(sub, &opt_passed, &opt_total) < 0;
	snprintf(sub, sizeof(sub), "%s/optional/format", dir);
	bad |= run_dir(sub, &opt_passed, &opt_total) < 0;
	printf("draft7 optional suite: %d/%d passed\n", opt_passed, opt_total);
	return !bad && total > 0 && passed == total && opt_total > 0 && opt_passed == opt_total ? 0
												: 1;
}
