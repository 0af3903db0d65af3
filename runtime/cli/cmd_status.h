/* SPDX-License-Identifier: Apache-2.0 */
/* nifkit status: the hosts running on this machine. */
#ifndef NIFKIT_CMD_STATUS_H
#define NIFKIT_CMD_STATUS_H

/* argv[0] is "status". Exit status: 0, 1 when the state files cannot be
 * read, 64 usage error. */
int nk_cmd_status(int argc, char **argv);

#endif
