/* SPDX-License-Identifier: Apache-2.0 */
/* nifkit policy: check policy files. */
#ifndef NIFKIT_CMD_POLICY_H
#define NIFKIT_CMD_POLICY_H

/*
 * argv[0] is "policy". Exit status: 0 every file is a valid policy, 1 some
 * file is not (or cannot be read), 64 usage error.
 */
int nk_cmd_policy(int argc, char **argv);

#endif
