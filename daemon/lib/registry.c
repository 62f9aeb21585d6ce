/* The name-keyed list behind the per-profile registries (guards, pools):
 * a handful of profiles, looked up at start and reload only. */
#include "registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct registry_entry *registry_find(struct registry_entry *head, const char *name)
{
	for (; head; head = head->next)
		if (strcmp(head->name, name) == 0)
			return head;
	return NULL;
}

int registry_add(struct registry_entry **head, struct registry_entry *e, const char *name)
{
	e->name = strdup(name);
	if (!e->name)
		return -ENOMEM;
	e->next = *head;
	*head = e;
	return 0;
}

void registry_entry_release(struct registry_entry *e)
{
	free(e->name);
	e->name = NULL;
}
