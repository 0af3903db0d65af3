/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include "protocol.h"
#include "violation.h"

int nk_violation_parse(const uint8_t *payload, size_t len, int *ret_nr, uint32_t *ret_arch)
{
        if (!payload || len != NK_VIOLATION_PAYLOAD_SIZE)
                return -EBADMSG;

        struct nk_rd r = nk_rd_init(payload, len);
        uint32_t nr, arch;
        if (!nk_rd_u32(&r, &nr) || !nk_rd_u32(&r, &arch))
                return -EBADMSG;
        if (ret_nr)
                *ret_nr = (int) nr;
        if (ret_arch)
                *ret_arch = arch;
        return 0;
}
