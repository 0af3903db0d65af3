/* SPDX-License-Identifier: Apache-2.0 */
/* IP address literals (inet.h). */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

#include "inet.h"

_Static_assert(NK_IP_TEXT_MAX == INET6_ADDRSTRLEN, "the text of any address fits");

int nk_ip_parse(const char *s, void *ret_addr)
{
        unsigned char addr[NK_IP_ADDR_MAX];
        int family = 0;

        if (inet_pton(AF_INET, s, addr) == 1)
                family = AF_INET;
        else if (inet_pton(AF_INET6, s, addr) == 1)
                family = AF_INET6;
        if (family && ret_addr)
                memcpy(ret_addr, addr, family == AF_INET ? 4 : 16);
        return family;
}

int nk_ip_canonical(const char *s, char buf[NK_IP_TEXT_MAX])
{
        unsigned char addr[NK_IP_ADDR_MAX];
        int family = nk_ip_parse(s, addr);

        if (family && !inet_ntop(family, addr, buf, NK_IP_TEXT_MAX))
                return 0;
        return family;
}
