/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A NIF library's entitlements: what it needs from its sandbox, declared by
 * its author and carried in the .so itself, in the policy's vocabulary
 * (nifkit-policy(5): files, network, limits). nifkit inspect prints them;
 * nifkit wrap shows them and runs the library under the intersection of
 * them and the operator's policy, the operator having the last word.
 *
 * One line in any one source file of the library:
 *
 *   #include <nifkit_entitlements.h>
 *   NIFKIT_ENTITLEMENTS("{\"files\": [{\"path\": \"/var/lib/myapp\", \"access\": \"read\"}],"
 *                       " \"limits\": {\"memory_mb\": 128}}");
 *
 * The document is JSON: an object with any of "files", "network" and
 * "limits", each as in a policy; "nifkit_entitlements" (the format's
 * version, 1) may be given and is added when missing. It lands in the ELF
 * section .nifkit_entitlements; nothing of it runs, and a library built
 * with it loads in a plain VM exactly as without. A library that cannot be
 * rebuilt gets the same document as NAME.entitlements.json beside NAME.so.
 */
#ifndef NIFKIT_ENTITLEMENTS_H
#define NIFKIT_ENTITLEMENTS_H

#define NIFKIT_ENTITLEMENTS_SECTION ".nifkit_entitlements"

#define NIFKIT_ENTITLEMENTS(json)                                                                    \
        __attribute__((used, section(NIFKIT_ENTITLEMENTS_SECTION), aligned(1))) static const char \
                nifkit_entitlements_document_[] = json

#endif
