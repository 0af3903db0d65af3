/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The capability broker, runtime side: the host has no files and no
 * network; it asks, and the broker checks the policy, opens or connects in
 * the runtime's namespaces and passes the descriptor back (SCM_RIGHTS), or
 * answers with the errno the NIF sees. Internal to libnifkit.
 *
 * Lifecycle: nk_broker_new (opens each grant's directory once, O_PATH) →
 * nk_broker_attach (hands the host its end of the broker socket and starts
 * the thread that serves it) → nk_broker_free (stops the thread, closes
 * everything). The nk_broker_open/connect/listen/resolve functions are the
 * decisions themselves; the thread calls them, and tests may too.
 *
 * Files: a request names a path; absolute paths are matched against the
 * grants by whole components, the longest grant wins; relative paths are
 * relative to the host's working directory, its root, so "a/b" is "/a/b".
 * The rest of the path is opened with openat2() beneath the grant's
 * directory fd (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, plus
 * RESOLVE_NO_SYMLINKS when the grant says no_symlinks). Only regular files
 * are handed out: never a directory, device, FIFO or socket.
 */
#ifndef NIFKIT_BROKER_H
#define NIFKIT_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "nifkit.h"

struct nk_policy;
struct nk_broker;

/*
 * A broker for policy (not copied: it must outlive the broker), on behalf
 * of library (copied; named in audit records). Grants whose directory does
 * not exist are kept and answer ENOENT. With audit_log (a path, or NULL)
 * every decision is appended there as a JSON line; without it, a policy
 * in audit mode sends each decision to the log sink as a "broker_decision"
 * event. Returns 0, -ENOMEM, or -errno of opening audit_log.
 */
int nk_broker_new(const struct nk_policy *policy, const char *library, const char *audit_log,
                  struct nk_broker **ret);

/*
 * Creates the broker socket, sends the host's end on channel (a
 * BROKER_CHANNEL datagram, which must be the first thing the host reads)
 * and starts serving. Returns 0 or -errno.
 */
int nk_broker_attach(struct nk_broker *b, int channel);

/* Stops serving, closes every descriptor. Accepts NULL. */
void nk_broker_free(struct nk_broker *b);

/* Whether a policy needs a broker at all: grants, endpoints, names, or
 * audit mode. A host without one is refused everything. */
bool nk_broker_needed(const struct nk_policy *policy);

/* The decisions. Each returns 0 with a close-on-exec descriptor in *ret_fd,
 * or the -errno the NIF sees. */
int nk_broker_open(struct nk_broker *b, const char *path, size_t len, int flags, unsigned mode, int *ret_fd);
/* Removes a regular file or symlink beneath a "create" grant: 0 or -errno
 * (ENOENT outside every grant, EACCES beneath one that may not create). */
int nk_broker_unlink(struct nk_broker *b, const char *path, size_t len);
int nk_broker_connect(struct nk_broker *b, int type, int protocol, const struct sockaddr *sa, socklen_t len,
                      int *ret_fd);
int nk_broker_listen(struct nk_broker *b, int type, int protocol, int backlog, const struct sockaddr *sa,
                     socklen_t len, int *ret_fd);
/* Up to max addresses (port 0) that name resolves to; *ret_n how many. */
int nk_broker_resolve(struct nk_broker *b, const char *name, int family, struct sockaddr_storage *ret,
                      size_t max, size_t *ret_n);

/* ---- audit records (audit.c) ------------------------------------------ */

struct nk_audit_record {
        const char *library;
        const char *op;                 /* "open", "connect", "listen", "resolve" */
        const char *path;               /* open: the path as the host sent it (made absolute) */
        int flags;                      /* open */
        const char *host;               /* connect/listen: address literal; resolve: name */
        int port;
        bool udp;
        const char *decision;           /* "allow", "audit-allow", "deny" */
        int error;                      /* positive errno of a refusal, or 0 */
};

/* One JSON line for rec, NUL-terminated, into buf. Returns its length, or
 * -ENOBUFS if it does not fit. */
int nk_audit_format(const struct nk_audit_record *rec, char *buf, size_t size);

/* nk_audit_suggest, which turns these records into a policy: nifkit.h. */

#endif
