/* Fuzz target: a message read from the fleet's Redis channel (hostile: any
 * client of that Redis can publish). Any bytes are either refused or decode
 * into a message that encodes and decodes back to the same message. */
#include <errno.h>

#include "fleetproto.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size ? size : 1), out[FLEET_MSG_MAX + 1];
	struct fleet_msg m, back;
	int n;

	if (!copy)
		return 0;
	memcpy(copy, data, size); /* exactly size bytes: ASan sees any overread */
	if (fleet_msg_decode(copy, size, &m) == 0) {
		n = fleet_msg_encode(&m, out, sizeof(out));
		if (n < 0 || (size_t)n > size || fleet_msg_decode(out, (size_t)n, &back) != 0 ||
		    back.kind != m.kind || back.instance != m.instance ||
		    strcmp(back.id, m.id) != 0 || back.until_ms != m.until_ms)
			abort();
	}
	free(copy);
	return 0;
}
