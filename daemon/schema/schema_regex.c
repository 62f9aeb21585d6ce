/* ECMA-262 regular expressions on PCRE2: a pattern is translated where the
 * two dialects read the same text differently, and refused where the text
 * has a meaning only in PCRE2, so a schema never silently means something
 * other than what its ECMA-262 author wrote. */
#include "schema_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

/* Where PCRE2 syntax has no ECMA-262 meaning (or another one), the pattern
 * is rejected rather than silently read the PCRE2 way. Returns a message,
 * or NULL when pattern[i] (after a backslash or "(") is fine. */
static const char *pcre_only(const char *pat, size_t len, size_t i, int escape)
{
	if (escape)
		return strchr("AZzGQEKhHRXNeagoCLlU", pat[i]) ? "an escape that ECMA-262 lacks"
							      : NULL;
	if (pat[i] == '*')
		return "a PCRE2 verb";
	if (pat[i] != '?' || i + 1 >= len)
		return NULL;
	if (pat[i + 1] == ':' || pat[i + 1] == '=' || pat[i + 1] == '!')
		return NULL;
	if (pat[i + 1] == '<' && i + 2 < len && pat[i + 2] != '>')
		return NULL; /* lookbehind or a named group */
	return "a group syntax that ECMA-262 lacks";
}

char *schema_regex_translate(const char *pat, size_t len, const char **ret_err)
{
	static const char ws[] = "\\t\\n\\x0b\\f\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029"
				 "\\u202f\\u205f\\u3000\\ufeff";
	struct strbuf out;
	int in_class = 0, quantified = 0;
	size_t i;

	*ret_err = NULL;
	/* The longest expansion, "\S", is under 128 bytes. */
	strbuf_init(&out, len * 128 + 64);
	for (i = 0; i < len && !*ret_err; i++) {
		char c = pat[i];
		int was_quantified = quantified;

		quantified = 0;
		if (c == '\\' && i + 1 < len) {
			char e = pat[i + 1];

			*ret_err = pcre_only(pat, len, i + 1, 1);
			if (e == 's' && in_class) {
				strbuf_adds(&out, ws);
			} else if ((e == 's' || e == 'S') && !in_class) {
				strbuf_adds(&out, e == 's' ? "[" : "[^");
				strbuf_adds(&out, ws);
				strbuf_adds(&out, "]");
			} else if (e == 'v') {
				strbuf_adds(&out, "\\x0b");
			} else {
				strbuf_add(&out, pat + i, 2);
			}
			i++;
			continue;
		}
		if (in_class) {
			if (c == ']')
				in_class = 0;
			strbuf_add(&out, &c, 1);
			continue;
		}
		switch (c) {
		case '[':
			in_class = 1;
			strbuf_add(&out, &c, 1);
			if (i + 1 < len && pat[i + 1] == '^')
				strbuf_add(&out, pat + ++i, 1);
			break;
		case '.':
			strbuf_adds(&out, "[^\\n\\r\\u2028\\u2029]");
			break;
		case '(':
			if (i + 1 < len)
				*ret_err = pcre_only(pat, len, i + 1, 0);
			strbuf_add(&out, &c, 1);
			break;
		case '+':
			if (was_quantified == 1)
				*ret_err = "a possessive quantifier";
			/* fall through */
		case '*':
		case '?':
		case '}':
			/* A '?' right after a quantifier makes it lazy, and nothing
			 * may follow that. */
			quantified = was_quantified ? 2 : 1;
			strbuf_add(&out, &c, 1);
			break;
		default:
			strbuf_add(&out, &c, 1);
			break;
		}
	}
	strbuf_add(&out, "", 0);
	if (*ret_err) {
		strbuf_release(&out);
		return NULL;
	}
	return strbuf_steal(&out, NULL);
}

/* Compiles pat with the options every schema regex gets; 1, 0 or -ENOMEM. */
static int compiles(const char *pat, size_t len)
{
	pcre2_compile_context *cctx = pcre2_compile_context_create(NULL);
	pcre2_code *code;
	PCRE2_SIZE off;
	int e;

	if (!cctx)
		return -ENOMEM;
	pcre2_set_compile_extra_options(cctx, SCHEMA_REGEX_PCRE_EXTRA);
	code = pcre2_compile((PCRE2_SPTR)pat, len, SCHEMA_REGEX_PCRE_OPTIONS, &e, &off, cctx);
	pcre2_compile_context_free(cctx);
	if (!code)
		return e == PCRE2_ERROR_NOMEMORY ? -ENOMEM : 0;
	pcre2_code_free(code);
	return 1;
}

int schema_regex_valid(const char *pat, size_t len)
{
	const char *why;
	char *tr;
	int r;

	r = compiles(pat, len);
	if (r <= 0)
		return r;
	tr = schema_regex_translate(pat, len, &why);
	if (!tr)
		return why ? 0 : -ENOMEM;
	r = compiles(tr, strlen(tr));
	free(tr);
	return r;
}
