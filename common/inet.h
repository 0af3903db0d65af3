/* SPDX-License-Identifier: Apache-2.0 */
/*
 * IP address literals, read one way everywhere: the policy loader (which
 * canonicalises the endpoints it is given), the broker (which tells a
 * literal from a name to resolve) and the host's interposed getaddrinfo
 * and connect (which answer a literal without asking the broker). A
 * literal is what inet_pton accepts: dotted-quad IPv4 ("127.0.0.1", not
 * "127.1"), or IPv6 without brackets or zone.
 */
#ifndef NIFKIT_INET_H
#define NIFKIT_INET_H

#include <stdbool.h>
#include <stddef.h>

#define NK_IP_ADDR_MAX 16       /* bytes of an IPv6 address */
#define NK_IP_TEXT_MAX 46       /* INET6_ADDRSTRLEN */

/* AF_INET or AF_INET6 with the address's bytes (4 or 16) in ret_addr
 * (NK_IP_ADDR_MAX bytes, or NULL), else 0 when s is no literal. */
int nk_ip_parse(const char *s, void *ret_addr);

static inline bool nk_ip_is_literal(const char *s)
{
        return nk_ip_parse(s, NULL) != 0;
}

/* The literal s in its canonical text (lower case, IPv6 compressed) in
 * buf (NK_IP_TEXT_MAX bytes): its family, or 0 when s is no literal. */
int nk_ip_canonical(const char *s, char buf[NK_IP_TEXT_MAX]);

#endif
