/* The entry's layout, all integers little-endian:
 *   "BCE1" | status u16 | flags u16 | stored_at i64 | lifetime u32 | age u32
 *   | swr u32 | sie u32 | nfields u16 | per field: name_len u16, name,
 *   value_len u32, value | body_len u64 | body */
#include "cacheentry.h"

#include <errno.h>
#include <string.h>

#define MAGIC "BCE1"
#define HEAD_LEN (4 + 2 + 2 + 8 + 4 * 4 + 2)
#define FLAG_NEVER_STALE 1u
#define FLAG_REVALIDATE 2u

size_t cacheentry_size(const struct cacheentry_field *fields, size_t nfields, size_t body_len)
{
	size_t n = HEAD_LEN + 8;

	if (nfields > CACHEENTRY_FIELDS_MAX)
		return 0;
	for (size_t i = 0; i < nfields; i++) {
		if (fields[i].name_len == 0 || fields[i].name_len > CACHEENTRY_NAME_MAX ||
		    fields[i].value_len > CACHEENTRY_VALUE_MAX)
			return 0;
		n += 2 + fields[i].name_len + 4 + fields[i].value_len;
	}
	if (body_len > SIZE_MAX - n)
		return 0;
	return n + body_len;
}

static unsigned char *put(unsigned char *p, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		*p++ = (unsigned char)(v >> (8 * i));
	return p;
}

static unsigned char *put_bytes(unsigned char *p, const void *src, size_t len)
{
	if (len)
		memcpy(p, src, len);
	return p + len;
}

size_t cacheentry_encode(const struct cacheentry_meta *m, const struct cacheentry_field *fields,
			 size_t nfields, const void *body, size_t body_len, void *out,
			 size_t outlen)
{
	size_t n = cacheentry_size(fields, nfields, body_len);
	unsigned char *p = out;
	unsigned flags =
	    (m->never_stale ? FLAG_NEVER_STALE : 0) | (m->revalidate ? FLAG_REVALIDATE : 0);

	if (!n || n > outlen || m->status < 100 || m->status > 999)
		return 0;
	p = put_bytes(p, MAGIC, 4);
	p = put(p, (uint64_t)m->status, 2);
	p = put(p, flags, 2);
	p = put(p, (uint64_t)m->stored_at, 8);
	p = put(p, m->lifetime_s, 4);
	p = put(p, m->age_s, 4);
	p = put(p, m->stale_while_revalidate_s, 4);
	p = put(p, m->stale_if_error_s, 4);
	p = put(p, nfields, 2);
	for (size_t i = 0; i < nfields; i++) {
		p = put(p, fields[i].name_len, 2);
		p = put_bytes(p, fields[i].name, fields[i].name_len);
		p = put(p, fields[i].value_len, 4);
		p = put_bytes(p, fields[i].value, fields[i].value_len);
	}
	p = put(p, body_len, 8);
	put_bytes(p, body, body_len);
	return n;
}

/* A reader over the blob that fails once past its end. */
struct reader {
	const unsigned char *p, *end;
	int bad;
};

static uint64_t get(struct reader *r, int bytes)
{
	uint64_t v = 0;

	if (r->bad || (size_t)(r->end - r->p) < (size_t)bytes) {
		r->bad = 1;
		return 0;
	}
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += bytes;
	return v;
}

static const void *get_bytes(struct reader *r, uint64_t len)
{
	const void *at = r->p;

	if (r->bad || (uint64_t)(r->end - r->p) < len) {
		r->bad = 1;
		return NULL;
	}
	r->p += len;
	return at;
}

int cacheentry_decode(const void *blob, size_t len, struct cacheentry_view *ret)
{
	struct reader r = { blob, (const unsigned char *)blob + len, 0 };
	struct cacheentry_meta *m = &ret->meta;
	const void *magic = get_bytes(&r, 4);
	unsigned flags;
	uint64_t n, body_len;

	if (!magic || memcmp(magic, MAGIC, 4) != 0)
		return -EINVAL;
	m->status = (int)get(&r, 2);
	flags = (unsigned)get(&r, 2);
	m->stored_at = (int64_t)get(&r, 8);
	m->lifetime_s = (uint32_t)get(&r, 4);
	m->age_s = (uint32_t)get(&r, 4);
	m->stale_while_revalidate_s = (uint32_t)get(&r, 4);
	m->stale_if_error_s = (uint32_t)get(&r, 4);
	m->never_stale = !!(flags & FLAG_NEVER_STALE);
	m->revalidate = !!(flags & FLAG_REVALIDATE);
	n = get(&r, 2);
	if (r.bad || n > CACHEENTRY_FIELDS_MAX || m->status < 100 || m->status > 999 ||
	    (flags & ~(FLAG_NEVER_STALE | FLAG_REVALIDATE)))
		return -EINVAL;
	ret->nfields = (size_t)n;
	for (size_t i = 0; i < ret->nfields; i++) {
		struct cacheentry_field *f = &ret->fields[i];

		f->name_len = (size_t)get(&r, 2);
		f->name = get_bytes(&r, f->name_len);
		f->value_len = (size_t)get(&r, 4);
		f->value = get_bytes(&r, f->value_len);
		if (r.bad || f->name_len == 0 || f->name_len > CACHEENTRY_NAME_MAX ||
		    f->value_len > CACHEENTRY_VALUE_MAX)
			return -EINVAL;
	}
	body_len = get(&r, 8);
	ret->body = get_bytes(&r, body_len);
	ret->body_len = (size_t)body_len;
	if (r.bad || r.p != r.end)
		return -EINVAL;
	return 0;
}

uint32_t cacheentry_age(const struct cacheentry_meta *m, int64_t now)
{
	uint64_t age = m->age_s;

	if (now > m->stored_at)
		age += (uint64_t)(now - m->stored_at);
	return age > UINT32_MAX ? UINT32_MAX : (uint32_t)age;
}
