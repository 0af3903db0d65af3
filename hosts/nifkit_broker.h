/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The capability broker's explicit API, for authors of NIF libraries that
 * know they run under nifkit. The functions are defined by nifkit-host and
 * resolved when it loads the library (like enif_*): declare them weak, or
 * check for nifkit-host, if the library must also load in plain BEAM.
 *
 * Unmodified libraries need none of this: nifkit-host's open(), fopen(),
 * socket()+connect(), bind()+listen() and getaddrinfo() go through the same
 * broker. Every function returns a descriptor (close-on-exec, owned by the
 * caller) or a negative errno: -EACCES when the policy does not grant it.
 */
#ifndef NIFKIT_BROKER_API_H
#define NIFKIT_BROKER_API_H

#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* open(2) of a path beneath one of the policy's "files" grants. A
 * directory is never opened; O_CREAT needs "create", writing "read-write". */
int nifkit_open(const char *path, int flags, mode_t mode);

/* A TCP socket connected to host:port, one of the policy's "connect"
 * entries. host is an IPv4/IPv6 literal, or a name in "resolve". */
int nifkit_connect(const char *host, uint16_t port);

/* A socket bound to host:port, one of the policy's "listen" entries:
 * type SOCK_STREAM comes back listening with backlog (0: the system's
 * maximum), SOCK_DGRAM bound ("udp:host:port" entries). */
int nifkit_listen(const char *host, uint16_t port, int type, int backlog);

#ifdef __cplusplus
}
#endif

#endif
