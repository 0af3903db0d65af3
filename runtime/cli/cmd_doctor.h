/* SPDX-License-Identifier: Apache-2.0 */
/* nifkit doctor: what this machine allows a sandboxed host. */
#ifndef NIFKIT_CMD_DOCTOR_H
#define NIFKIT_CMD_DOCTOR_H

/* argv[0] is "doctor". Exit status: 0 hosts can start, 1 they cannot,
 * 64 usage error. */
int nk_cmd_doctor(int argc, char **argv);

#endif
