/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The capability broker, host side: synchronous requests to the runtime's
 * broker (runtime/broker.h) over the broker socket the runtime passes at
 * start (NK_MSG_BROKER_CHANNEL). Safe from any number of threads at once:
 * each request carries an id and its waiter gets the answer with that id.
 *
 * Each function returns a descriptor (close-on-exec, owned by the caller)
 * or 0, or the -errno the NIF should see: -ENOENT for a path outside every
 * grant, -EACCES for what the policy refuses otherwise; without a broker,
 * every path is outside every grant and every socket refused.
 */
#ifndef NIFKIT_BROKER_CLIENT_H
#define NIFKIT_BROKER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/*
 * Receives the BROKER_CHANNEL datagram waiting on the channel (the server
 * looked at its header) and keeps its descriptor as the broker socket.
 * Returns 1, -EPROTO (not a well-formed BROKER_CHANNEL with a SEQPACKET
 * socket), or -errno.
 */
int nk_broker_client_accept(int channel);

/* Uses sock (owned from now on) as the broker socket; for tests. */
void nk_broker_client_set_socket(int sock);
bool nk_broker_client_present(void);

int nk_broker_client_open(const char *path, int flags, unsigned mode);
/* Whether path lies beneath one of the policy's grants inside the host's
 * own /tmp or /dev (BROKER_CHANNEL lists them): such a path is the
 * broker's, not the host's. */
bool nk_broker_client_granted(const char *path);
/* Removes a file beneath a "create" grant: 0 or -errno. */
int nk_broker_client_unlink(const char *path);
/* The runtime's working directory, NUL-terminated into buf: -ERANGE when it
 * does not fit, -ENOTCONN without a broker. */
int nk_broker_client_cwd(char *buf, size_t size);
int nk_broker_client_connect(int type, int protocol, const struct sockaddr *sa, socklen_t len);
int nk_broker_client_listen(int type, int protocol, int backlog, const struct sockaddr *sa, socklen_t len);
/* Up to max addresses (port 0) of name; returns how many, or -errno. */
int nk_broker_client_resolve(const char *name, int family, struct sockaddr_storage *ret, size_t max);

#endif
