/* HTTP method names (see method.h). */
#include "method.h"

#include <string.h>

static const char *const names[METHOD__COUNT] = {
	"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE",
};

const char *method_name(enum http_method m)
{
	return (unsigned)m < METHOD__COUNT ? names[m] : NULL;
}

int method_parse(const char *name)
{
	for (int i = 0; i < METHOD__COUNT; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}
