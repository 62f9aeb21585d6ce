/* Fuzz target: content decoding for validation. The first input byte picks
 * a Content-Encoding list, the rest is the body. Whatever the bytes, the
 * output never passes the cap and every failure carries a message. */
#include <errno.h>

#include "decode.h"
#include "fuzz.h"

/* Small, so compression bombs hit it quickly. */
#define FUZZ_DECODE_MAX (256 * 1024)

static const char *const codings[] = {
	"gzip",
	"x-gzip",
	"deflate",
	"identity",
	"gzip, gzip",
	"deflate, gzip",
	"GZIP",
	"br",
	"",
	"gzip,,identity",
	"gzip, deflate, gzip, deflate, gzip, deflate, gzip, deflate, gzip", /* too many */
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct strbuf out;
	char err[128] = "";
	int r;

	if (size < 1)
		return 0;
	strbuf_init(&out, FUZZ_DECODE_MAX);
	r = decode_body(codings[data[0] % (sizeof(codings) / sizeof(codings[0]))], data + 1,
			size - 1, FUZZ_DECODE_MAX, &out, err, sizeof(err));
	if (out.len > FUZZ_DECODE_MAX)
		abort();
	if (r != 0 && (err[0] == '\0' || (r != -ENOTSUP && r != -EINVAL && r != -EFBIG &&
					  r != -E2BIG && r != -ENOMEM)))
		abort();
	strbuf_release(&out);
	return 0;
}
