/* The HTTP methods braced knows by name, as numbers and as bits for method
 * sets: the one name table, shared by the configuration, the front and the
 * admin API. */
#ifndef BRACED_METHOD_H
#define BRACED_METHOD_H

enum http_method {
	METHOD_GET,
	METHOD_HEAD,
	METHOD_POST,
	METHOD_PUT,
	METHOD_DELETE,
	METHOD_OPTIONS,
	METHOD_PATCH,
	METHOD_TRACE,
	METHOD__COUNT
};
#define METHOD_BIT(m) (1u << (m))

/* Name of a method ("GET"), or NULL. */
const char *method_name(enum http_method m);
/* Method for a name (case-sensitive, as HTTP methods are), or -1. */
int method_parse(const char *name);

#endif
