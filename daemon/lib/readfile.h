/* The one bounded file reader: configuration files, ${file:} secrets and
 * schema files named by a $ref. A FIFO, a device or a socket could block a
 * load (and a reload, on the event loop) forever, so the file is opened
 * without waiting and anything but a regular file is refused. */
#ifndef BRACED_READFILE_H
#define BRACED_READFILE_H

#include <stddef.h>

/* Reads the regular file at path, at most max bytes, into *ret_buf (a
 * malloc'd copy with a NUL after the *ret_len bytes, returned to the
 * caller). Returns 0, or a negative errno with a lower-case reason in err
 * (errlen bytes): -EINVAL not a regular file, -EFBIG larger than max
 * (checked while reading, so a file that grows cannot pass), or the open or
 * read error. The outputs are untouched on failure. */
int readfile_regular(const char *path, size_t max, char **ret_buf, size_t *ret_len, char *err,
		     size_t errlen);

#endif
