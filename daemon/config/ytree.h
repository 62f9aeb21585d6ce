/* A bounded YAML document tree with positions, read with libyaml's event API.
 * It exists so the configuration reader can report every error with its line
 * and column, and so schemas written in YAML can become json-c objects. */
#ifndef BRACED_YTREE_H
#define BRACED_YTREE_H

#include <stddef.h>
#include <json-c/json.h>

/* Limits on what a configuration file may contain. */
#define YTREE_MAX_FILE_SIZE (4u * 1024 * 1024)
#define YTREE_MAX_DEPTH 64
#define YTREE_MAX_NODES 200000
#define YTREE_MAX_ENTRIES 10000u

enum ynode_kind { YNODE_SCALAR, YNODE_MAP, YNODE_SEQ };

struct ynode {
	enum ynode_kind kind;
	int quoted;           /* scalar written in quotes (always a string) */
	unsigned line, col;   /* 1-based position of the node's start */
	char *value;          /* scalar text, NUL-terminated */
	size_t len;           /* scalar length in bytes (may hold NUL bytes) */
	size_t n;             /* entries of a map or items of a sequence */
	struct ynode **keys;  /* map keys (scalars), n of them */
	struct ynode **items; /* map values or sequence items, n of them */
};

/* Read and parse the file at path. Rejects files over YTREE_MAX_FILE_SIZE,
 * nesting deeper than YTREE_MAX_DEPTH, aliases and anchors, non-scalar and
 * duplicate keys, and more than one document. An empty file gives an empty
 * map. On success returns 0 and *ret_root (owned by the caller, free with
 * ynode_free). On failure returns a negative errno, writes a message into err
 * and the 1-based position into *ret_line and *ret_col (0 when not about a place). */
int ytree_load_file(const char *path, struct ynode **ret_root, char *err, size_t errlen,
		    unsigned *ret_line, unsigned *ret_col);

/* Same from a buffer (used by tests). */
int ytree_load_string(const char *text, size_t len, struct ynode **ret_root, char *err,
		      size_t errlen, unsigned *ret_line, unsigned *ret_col);

/* Frees a tree; NULL is a no-op. */
void ynode_free(struct ynode *node);

/* Value of key in a map node, or NULL (borrowed). */
struct ynode *ynode_get(const struct ynode *map, const char *key);

/* Scalar helpers following YAML 1.2's core schema for plain scalars. */
int ynode_is_null(const struct ynode *n);
/* Returns 0 and *ret (1/0) for true/false plain scalars, else -EINVAL. */
int ynode_bool(const struct ynode *n, int *ret);
/* Returns 0 and *ret for a plain decimal integer scalar, else -EINVAL/-ERANGE. */
int ynode_int(const struct ynode *n, long long *ret);
/* Returns 0 and *ret for a plain number scalar (int or float), else -EINVAL. */
int ynode_number(const struct ynode *n, double *ret);

/* Converts a tree to json-c with core-schema typing. Returns a new object
 * (the caller owns it; NULL when the node is null), or sets *ret_err to the
 * offending node and returns NULL with *ret_failed = 1. */
struct json_object *ytree_to_json(const struct ynode *n, int *ret_failed,
				  const struct ynode **ret_err);

#endif
