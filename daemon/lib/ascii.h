/* Character classes of the protocols braced reads, without locale: the one
 * place for hex digits (of %XX escapes, in paths, query strings, schema
 * URIs and formats). */
#ifndef BRACED_ASCII_H
#define BRACED_ASCII_H

/* The value of the hex digit c (either case), or -1. */
int ascii_hex_digit(int c);

#endif
