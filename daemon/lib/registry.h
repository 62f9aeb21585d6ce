/* Objects kept by name for the life of the daemon, across reloads: the
 * per-profile guards and upstream pools. The object embeds a struct
 * registry_entry as its first member; the registry is the list of those
 * entries, newest first. A reload looks a profile up by name and finds the
 * object, and the state in it, that the previous configuration used. */
#ifndef BRACED_REGISTRY_H
#define BRACED_REGISTRY_H

#include <stddef.h>

struct registry_entry {
	char *name; /* owned */
	struct registry_entry *next;
};

/* The object that embeds entry e as member. */
#define registry_object(e, type, member) ((type *)(void *)((char *)(e)-offsetof(type, member)))

/* The entry named name in the list at head (borrowed), or NULL. */
struct registry_entry *registry_find(struct registry_entry *head, const char *name);

/* Names e with a copy of name and links it first into *head. Returns 0, or
 * -ENOMEM with e neither named nor linked. */
int registry_add(struct registry_entry **head, struct registry_entry *e, const char *name);

/* Frees the name of e, which its owner is about to free (the list is not
 * touched: owners free whole lists). */
void registry_entry_release(struct registry_entry *e);

#endif
