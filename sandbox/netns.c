/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's network namespace has one interface, loopback, and it is up,
 * so that a NIF that talks to 127.0.0.1 inside its own sandbox works while
 * nothing outside is reachable (the broker hands out real sockets).
 *
 * libnl-route-3 builds the RTM_NEWLINK request in the parent (it allocates);
 * the child sends those bytes on a NETLINK_ROUTE socket of its own
 * namespace and reads the kernel's ack.
 */
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/route/link.h>

#include "macro.h"
#include "sequencer.h"

/* Loopback is the first interface every new network namespace gets. */
#define LOOPBACK_IFINDEX 1

static void link_freep(struct rtnl_link **l)
{
        if (*l)
                rtnl_link_put(*l);
}

static void msg_freep(struct nl_msg **m)
{
        if (*m)
                nlmsg_free(*m);
}

int nk_netns_prepare(struct nk_netns_plan *ret, struct nk_sandbox_error *err)
{
        _cleanup_(link_freep) struct rtnl_link *orig = rtnl_link_alloc();
        _cleanup_(link_freep) struct rtnl_link *change = rtnl_link_alloc();
        _cleanup_(msg_freep) struct nl_msg *msg = NULL;

        if (!orig || !change)
                return nk_sandbox_error_set(err, -ENOMEM, "out of memory building the loopback request");
        rtnl_link_set_ifindex(orig, LOOPBACK_IFINDEX);
        rtnl_link_set_flags(change, IFF_UP);
        int r = rtnl_link_build_change_request(orig, change, 0, &msg);
        if (r < 0)
                return nk_sandbox_error_set(err, -EINVAL, "cannot build the loopback request: %s", nl_geterror(r));

        struct nlmsghdr *nh = nlmsg_hdr(msg);
        /* The child checks the kernel's answer instead of assuming it. */
        nh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
        nh->nlmsg_seq = 1;
        nh->nlmsg_pid = 0;
        uint8_t *bytes = malloc(nh->nlmsg_len);
        if (!bytes)
                return nk_sandbox_error_set(err, -ENOMEM, "out of memory building the loopback request");
        memcpy(bytes, nh, nh->nlmsg_len);
        *ret = (struct nk_netns_plan) { .msg = bytes, .len = nh->nlmsg_len };
        return 0;
}

void nk_netns_plan_free(struct nk_netns_plan *plan)
{
        free(plan->msg);
        *plan = (struct nk_netns_plan) {};
}

int nk_netns_child(const struct nk_netns_plan *plan, struct nk_child_err *e)
{
        int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd < 0)
                return nk_child_fail(e, -errno, "opening a NETLINK_ROUTE socket", NULL, NULL);

        struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
        int r = 0;
        ssize_t n;
        do
                n = sendto(fd, plan->msg, plan->len, 0, (struct sockaddr *) &kernel, sizeof kernel);
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t) plan->len) {
                r = nk_child_fail(e, n < 0 ? -errno : -EIO, "sending the loopback request", NULL, NULL);
                goto out;
        }

        /* The ack is an NLMSG_ERROR carrying 0, or the request's errno. */
        union {
                struct nlmsghdr h;
                uint8_t bytes[1024];
        } buf;
        do
                n = recv(fd, &buf, sizeof buf, 0);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
                r = nk_child_fail(e, -errno, "reading the loopback ack", NULL, NULL);
                goto out;
        }
        if ((size_t) n < sizeof(struct nlmsghdr) + sizeof(struct nlmsgerr) || buf.h.nlmsg_type != NLMSG_ERROR ||
            buf.h.nlmsg_seq != 1) {
                r = nk_child_fail(e, -EPROTO, "unexpected answer to the loopback request", NULL, NULL);
                goto out;
        }
        const struct nlmsgerr *ack = NLMSG_DATA(&buf.h);
        if (ack->error != 0)
                r = nk_child_fail(e, ack->error < 0 ? ack->error : -EPROTO, "bringing loopback up", NULL, NULL);
out:
        close(fd);
        return r;
}
