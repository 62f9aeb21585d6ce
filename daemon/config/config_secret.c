/* Secrets in the configuration: a scalar's ${NAME} (an environment
 * variable) and ${file:PATH} (a file's content, PATH relative to the
 * configuration's folder) are substituted once, at load, and the value is
 * marked secret so that nothing logs or shows it. */
#include "config_internal.h"
#include "readfile.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a file named by ${file:...} into *ret (owned by the caller, *ret_len
 * bytes to wipe), with the trailing newline removed. Only a regular file
 * (readfile_regular). */
static int read_secret_file(struct loader *L, const struct ynode *n, const char *name, char **ret,
			    size_t *ret_len)
{
	char path[PATH_MAX], why[128], *buf;
	size_t got;
	int r;

	if (name[0] != '/') {
		const char *slash = strrchr(L->path, '/');
		int dirlen = slash ? (int)(slash - L->path) : 1;

		snprintf(path, sizeof(path), "%.*s/%s", dirlen, slash ? L->path : ".", name);
	} else {
		snprintf(path, sizeof(path), "%s", name);
	}
	r = readfile_regular(path, CONFIG_MAX_SECRET_FILE, &buf, &got, why, sizeof(why));
	if (r < 0) {
		err_at(L, n, "secret file '%s': %s", path, why);
		return r;
	}
	*ret_len = got;
	if (got > 0 && buf[got - 1] == '\n')
		got--;
	if (got > 0 && buf[got - 1] == '\r')
		got--;
	buf[got] = '\0';
	*ret = buf;
	return 0;
}

/* Expands ${NAME} and ${file:PATH} in a scalar. Returns a new string and sets
 * *ret_secret when anything was substituted; NULL after an error. */
/* Frees s (NULL is a no-op) after wiping its first n bytes: it may hold a
 * secret. */
static void wipe_free(char *s, size_t n)
{
	if (s)
		explicit_bzero(s, n);
	free(s);
}

static char *expand(struct loader *L, const struct ynode *n, int *ret_secret)
{
	const char *s = n->value, *p;
	size_t cap = n->len + 1, len = 0;
	char *out;

	*ret_secret = 0;
	if (strlen(s) != n->len) {
		err_at(L, n, "string contains a NUL byte");
		return NULL;
	}
	out = malloc(cap);
	if (!out)
		return NULL;
	for (p = s; *p;) {
		const char *val = NULL;
		char *owned = NULL, name[256];
		size_t owned_len = 0;
		const char *end;
		size_t vlen;

		if (p[0] != '$' || p[1] != '{') {
			out[len++] = *p++;
			continue;
		}
		end = strchr(p + 2, '}');
		if (!end || (size_t)(end - p - 2) >= sizeof(name) || end == p + 2) {
			err_at(L, n, "unterminated or empty '${' reference");
			goto fail;
		}
		memcpy(name, p + 2, (size_t)(end - p - 2));
		name[end - p - 2] = '\0';
		if (strncmp(name, "file:", 5) == 0) {
			if (read_secret_file(L, n, name + 5, &owned, &owned_len) < 0)
				goto fail;
			val = owned;
		} else {
			for (const char *c = name; *c; c++) {
				if (!(*c == '_' || (*c >= 'A' && *c <= 'Z') ||
				      (*c >= 'a' && *c <= 'z') ||
				      (c > name && *c >= '0' && *c <= '9'))) {
					err_at(L, n,
					       "'%s' is not a valid environment variable name",
					       name);
					goto fail;
				}
			}
			val = getenv(name);
			if (!val) {
				err_at(L, n, "environment variable '%s' is not set", name);
				goto fail;
			}
		}
		vlen = strlen(val);
		if (len + vlen + strlen(end + 1) + 1 > cap) {
			char *grown;

			/* Not realloc: the old block, which may hold a secret
			 * already, is wiped before it is freed. */
			cap = len + vlen + strlen(end + 1) + 1;
			grown = malloc(cap);
			if (!grown) {
				wipe_free(owned, owned_len);
				goto fail;
			}
			memcpy(grown, out, len);
			wipe_free(out, len);
			out = grown;
		}
		memcpy(out + len, val, vlen);
		len += vlen;
		wipe_free(owned, owned_len);
		*ret_secret = 1;
		p = end + 1;
	}
	out[len] = '\0';
	if (len > CONFIG_MAX_STRING) {
		err_at(L, n, "string longer than %d bytes", CONFIG_MAX_STRING);
		goto fail;
	}
	return out;
fail:
	wipe_free(out, len);
	return NULL;
}

int get_string(struct loader *L, const struct ynode *n, const char *what, char **ret,
	       int *ret_secret)
{
	int secret;
	char *s;

	if (expect_kind(L, n, YNODE_SCALAR, what) < 0)
		return -EINVAL;
	s = expand(L, n, &secret);
	if (!s)
		return -EINVAL;
	if (ret_secret)
		*ret_secret = secret;
	free(*ret);
	*ret = s;
	return 0;
}

/* Zeroes and frees a secret string; NULL is a no-op. */
void config_secret_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}
