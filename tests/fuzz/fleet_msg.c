/* Fuzz target: a message read from the fleet's Redis channel, or a value
 * read back from its keys (hostile: any client of that Redis can publish
 * and write). Any bytes are either refused or decode into a message that
 * encodes and decodes back to the same message; under a secret, the
 * signature check refuses with a known reason or accepts a message whose
 * content alone decodes to the same. */
#include <errno.h>

#include "fleetproto.h"
#include "fuzz.h"

/* The secret and clock the signed seeds in corpus/fleet_msg were made with. */
#define FUZZ_SECRET "fuzz-fleet-secret-0123456789"
#define FUZZ_NOW 1700000000000ull
#define FUZZ_ID "p-1:0123456789abcdef"
/* The endpoint of the signed ejection value seed. */
#define FUZZ_ENDPOINT "127.0.0.2:8080"

static void check_plain(const char *s, size_t size)
{
	char out[FLEET_MSG_MAX + 1];
	struct fleet_msg m, back;
	int n;

	if (fleet_msg_decode(s, size, &m) != 0)
		return;
	n = fleet_msg_encode(&m, out, sizeof(out));
	if (n < 0 || (size_t)n > size || fleet_msg_decode(out, (size_t)n, &back) != 0 ||
	    back.kind != m.kind || back.instance != m.instance || strcmp(back.id, m.id) != 0 ||
	    back.until_ms != m.until_ms || strcmp(back.endpoint, m.endpoint) != 0 ||
	    (m.kind == FLEET_MSG_EJECT) != (m.endpoint[0] != '\0') ||
	    !(m.kind != FLEET_MSG_EJECT || fleet_endpoint_valid(m.endpoint, strlen(m.endpoint))))
		abort();
}

static void check_signed(const char *s, size_t size)
{
	enum fleet_reject why = FLEET_REJECT__COUNT;
	struct fleet_msg m, plain;
	size_t clen = 0;
	uint64_t v;
	int e;

	e = fleet_msg_decode_signed(s, size, FUZZ_SECRET, FUZZ_NOW, 2000, &m, &why);
	if (e == -EBADMSG && (unsigned)why >= FLEET_REJECT__COUNT)
		abort();
	if (e != 0 && e != -EBADMSG && e != -EINVAL)
		abort();
	if (e == 0 && (fleet_unseal(FUZZ_SECRET, m.id, s, size, FUZZ_NOW, 2000, &clen, &why) != 0 ||
		       fleet_msg_decode(s, clen, &plain) != 0 || plain.kind != m.kind ||
		       plain.until_ms != m.until_ms || strcmp(plain.id, m.id) != 0 ||
		       strcmp(plain.endpoint, m.endpoint) != 0))
		abort();
	for (int k = 0; k < FLEET_VALUE__COUNT; k++) {
		why = FLEET_REJECT__COUNT;
		e = fleet_value_decode_signed((enum fleet_value_kind)k, s, size, FUZZ_SECRET,
					      FUZZ_ID, FUZZ_NOW, 5000, &v, &why);
		if (e != 0 && (e != -EBADMSG || (unsigned)why >= FLEET_REJECT__COUNT))
			abort();
	}
	why = FLEET_REJECT__COUNT;
	e = fleet_eject_value_decode_signed(s, size, FUZZ_SECRET, FUZZ_ID, FUZZ_ENDPOINT, FUZZ_NOW,
					    5000, &v, &why);
	if (e != 0 && (e != -EBADMSG || (unsigned)why >= FLEET_REJECT__COUNT))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1);

	if (!copy)
		return 0;
	memcpy(copy, data, size); /* exactly size bytes: ASan sees any overread */
	check_plain(copy, size);
	check_signed(copy, size);
	free(copy);
	return 0;
}
