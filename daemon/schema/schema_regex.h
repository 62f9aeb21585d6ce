/* ECMA-262 regular expressions ("pattern", "patternProperties", format
 * "regex") on PCRE2: the translation of the ECMA-262 syntax PCRE2 reads
 * differently, and the refusal of the syntax only PCRE2 has. Pure. */
#ifndef BRACED_SCHEMA_REGEX_H
#define BRACED_SCHEMA_REGEX_H

#include <stddef.h>

/* Options every translated pattern is compiled with: UTF-8, "$" only at the
 * end, \u escapes, "[]" matches nothing, ASCII \d \w \b (no UCP), no \C. */
#define SCHEMA_REGEX_PCRE_OPTIONS                                                                  \
	(PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALT_BSUX | PCRE2_ALLOW_EMPTY_CLASS |             \
	 PCRE2_MATCH_UNSET_BACKREF | PCRE2_NEVER_UCP | PCRE2_NEVER_BACKSLASH_C)
/* The extra options of their compile context: \u{...} as well as \uHHHH. */
#define SCHEMA_REGEX_PCRE_EXTRA PCRE2_EXTRA_ALT_BSUX

/* Rewrites the ECMA-262 pattern pat (len bytes, borrowed) for PCRE2 where
 * the two differ and PCRE2 has no option for it: \s and \S are Unicode white
 * space in ECMA-262, "." stops at every line terminator, \v is only U+000B.
 * Rejects PCRE2 extensions: escapes like \A \Z \Q, (?i) and other groups,
 * verbs, possessive quantifiers.
 * Returns the translation (NUL-terminated, returned to the caller, who
 * frees it), or NULL with *ret_err set to a static message, or NULL with
 * *ret_err NULL on OOM. Does not check the rest of the syntax: PCRE2 does. */
char *schema_regex_translate(const char *pat, size_t len, const char **ret_err);

/* Says whether pat (len bytes, borrowed) is an ECMA-262 regular expression
 * braced can run: PCRE2 compiles it as written, schema_regex_translate()
 * accepts it and PCRE2 compiles the translation. Allocates (PCRE2 compiles).
 * Returns 1 when it is, 0 when not, -ENOMEM. */
int schema_regex_valid(const char *pat, size_t len);

#endif
