/* SPDX-License-Identifier: Apache-2.0 */
/* nifkit wrap-release / unwrap-release: every NIF of an OTP release. */
#ifndef NIFKIT_CMD_RELEASE_H
#define NIFKIT_CMD_RELEASE_H

/* argv[0] is the command. Exit status: 0 done, 1 refused or failed
 * (nothing changed), 64 usage error. */
int nk_cmd_wrap_release(int argc, char **argv);
int nk_cmd_unwrap_release(int argc, char **argv);

#endif
