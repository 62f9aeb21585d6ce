/* systemd's readiness protocol without libsystemd: one datagram to
 * $NOTIFY_SOCKET per state change. A no-op when not run by systemd. */
#ifndef BRACED_NOTIFY_H
#define BRACED_NOTIFY_H

/* Sends msg ("READY=1", ...). Returns 1 sent, 0 not under systemd, or a
 * negative errno. */
int notify_send(const char *msg);

#endif
