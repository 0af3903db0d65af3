/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire protocol between libnifkit (the runtime) and nifkit-host.
 *
 * Transport: one AF_UNIX SOCK_SEQPACKET socketpair per host, created with
 * SOCK_CLOEXEC; the host gets its end as `--fd N`. See transport.h for how a
 * message is cut into datagrams.
 *
 * A message is a 24-byte header followed by payload_len bytes of payload.
 * All integers, in the header and in payloads, are in the machine's native
 * byte order (little-endian on every platform we build for): both ends run
 * on the same machine from the same build, so no conversion is done.
 *
 * Payload fields are laid out back to back without padding:
 *   u32, u64        native-endian integers
 *   str             u32 length, then that many bytes (no NUL)
 *   rest            every byte up to the end of the payload
 * Terms are External Term Format, starting with the version byte 131.
 *
 * Requests carry an id chosen by the sender; the reply carries the same id.
 * Messages that need no reply use id 0. Neither side trusts the other's
 * lengths: every field is checked against the payload it came in.
 */
#ifndef NIFKIT_PROTOCOL_H
#define NIFKIT_PROTOCOL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"

#define NK_PROTO_HEADER_SIZE 24
/* Payload bytes in one datagram (the first one also carries the header). */
#define NK_FRAME_MAX (64 * 1024)
/* Default refusal limit for one message's payload. */
#define NK_PAYLOAD_MAX_DEFAULT ((size_t) 256 * 1024 * 1024)
/* Names (module, function) are atoms: at most 255 characters of UTF-8. */
#define NK_PROTO_NAME_MAX 1020
#define NK_PROTO_FUNCS_MAX 65536
#define NK_PROTO_ARITY_MAX 255
/* The host's exit status when its own allocator fails (a term the NIF
 * asked for cannot be made): where RLIMIT_AS stands in for a memory cgroup,
 * the runtime reports that death as "oom". */
#define NK_HOST_EXIT_OOM 251

struct nk_msg_header {
        uint32_t type;          /* enum nk_msg_type */
        uint32_t flags;         /* none defined yet; must be 0 */
        uint64_t id;
        uint64_t payload_len;
};
_Static_assert(sizeof(struct nk_msg_header) == NK_PROTO_HEADER_SIZE, "header layout");

enum nk_msg_type {
        /*
         * runtime → host. Loads the library and runs its load().
         * Payload: u32 workers (0 = default 4), str library path, u32 n,
         * n × str scope library, rest load_info ETF (empty means the atom
         * []). The scope libraries (at most NK_SCOPE_MAX) are loaded into
         * the host's global scope first, as beam.smp's own libraries are
         * in BEAM's.
         * Reply: LOADED or ERROR (category NK_PERR_LOAD). Sent once.
         */
        NK_MSG_LOAD = 1,
        /*
         * host → runtime, reply to LOAD.
         * Payload: str module name, u32 n, then n times
         * { str function name, u32 arity, u32 flags (ERL_NIF_DIRTY_JOB_*) },
         * then optionally u32 callbacks (NK_CALLBACK_*).
         */
        NK_MSG_LOADED = 2,
        /*
         * host → runtime, reply to any request that failed.
         * Payload: u32 category (enum nk_proto_error), rest UTF-8 message
         * naming what failed and why ("/x/y.so: no nif_init symbol",
         * "malformed args ETF at byte 7: …", "bad function index 9").
         * With id 0 it reports a message the host could not attribute to
         * a request (a datagram too short to hold a header).
         */
        NK_MSG_ERROR = 3,
        /*
         * runtime → host. Calls a function.
         * Payload: u32 function index (order of LOADED), str caller pid ETF
         * (empty: no caller process), rest args ETF, a proper list of
         * exactly arity terms.
         * Reply: RESULT, or ERROR (category NK_PERR_REJECTED) for a bad
         * index, malformed ETF, or an args list of the wrong length.
         */
        NK_MSG_CALL = 4,
        /*
         * host → runtime, reply to CALL.
         * Payload: u32 status (0 returned, 1 raised, or'ed with
         * NK_RESULT_NO_HANDLES when the term holds no resource handle),
         * rest term ETF (the result, or the exception's reason).
         */
        NK_MSG_RESULT = 5,
        /*
         * host → runtime, id 0, no reply: enif_send.
         * Payload: str to-pid ETF, rest message ETF.
         */
        NK_MSG_SEND = 6,
        /*
         * runtime → host, id 0, no reply: the runtime dropped its last
         * reference to a resource handle. Payload: u64 handle, then
         * optionally u64 count. With a count (the proxy NIF), it is how
         * many times the runtime received the handle since its previous
         * RELEASE of it: the host counts every time it sends a handle and
         * drops its reference only once the counts match, so a handle sent
         * again while a RELEASE was in flight stays valid. Without a count
         * the reference is dropped at once.
         */
        NK_MSG_RELEASE = 7,
        /* runtime → host: liveness probe, empty payload. Reply: PONG. */
        NK_MSG_PING = 8,
        /* host → runtime, reply to PING, empty payload. */
        NK_MSG_PONG = 9,
        /* runtime → host, no reply: exit now. The host exits with status 0. */
        NK_MSG_STOP = 10,
        /*
         * host → runtime, id 0, no reply: the seccomp filter trapped a
         * system call and the host is about to die by SIGSYS. Sent from
         * the SIGSYS handler as one datagram (header and payload together,
         * never split), so it never tears. If another thread was in the
         * middle of a message of several datagrams, the reader takes it for
         * part of that message and only the death by SIGSYS is seen.
         * Payload: u32 syscall number (a signed int), u32 audit
         * architecture (AUDIT_ARCH_*). Read it with nk_violation_parse()
         * (violation.h).
         */
        NK_MSG_VIOLATION = 11,
        /*
         * The capability broker (runtime/broker.h, hosts/broker_client.h).
         *
         * runtime → host, id 0: the first datagram on the channel, sent
         * once before LOAD, carrying (SCM_RIGHTS, see fdpass.h) the host's
         * end of a second SOCK_SEQPACKET socketpair that carries only the
         * messages below. Payload: u32 n, n × str path: the file grants
         * that lie beneath the host's own /tmp or /dev (at most
         * NK_BROKER_LOCAL_MAX, NK_BROKER_CHANNEL_MAX bytes in all), whose
         * paths the host must ask of the broker instead of opening its own.
         * A host started without it has no broker: every brokered open or
         * connect fails.
         */
        NK_MSG_BROKER_CHANNEL = 12,
        /*
         * On the broker socket, host → runtime, one datagram each (header
         * and payload together, at most NK_BROKER_MSG_MAX bytes). Each is a
         * request with a non-zero id; its answer is BROKER_REPLY with that
         * id, so requests from several host threads may be in flight.
         *
         * OPEN payload: u32 flags (open(2) O_*), u32 mode, rest path (no
         * NUL; absolute, or relative to the runtime's working directory
         * when the request is served: the VM's, as file:set_cwd/1 left it).
         */
        NK_MSG_BROKER_OPEN = 13,
        /* CONNECT payload: u32 socket type (SOCK_STREAM/SOCK_DGRAM),
         * u32 protocol, rest the peer's sockaddr_in or sockaddr_in6. */
        NK_MSG_BROKER_CONNECT = 14,
        /* LISTEN payload: u32 socket type, u32 protocol, u32 backlog,
         * rest the local sockaddr. A stream socket comes back bound and
         * listening; a datagram socket bound. */
        NK_MSG_BROKER_LISTEN = 15,
        /* RESOLVE payload: u32 family (AF_UNSPEC/AF_INET/AF_INET6), rest
         * the host name. */
        NK_MSG_BROKER_RESOLVE = 16,
        /*
         * runtime → host, the answer to one of the above. Payload: u32
         * error (0, or a positive errno the NIF sees), then for a
         * successful RESOLVE u32 n and n × str sockaddr (port 0). A
         * successful OPEN, CONNECT or LISTEN carries exactly one
         * descriptor (SCM_RIGHTS); nothing else ever does. For CWD, the
         * directory's path (no NUL).
         */
        NK_MSG_BROKER_REPLY = 17,
        /* CWD: no payload. The runtime's working directory, which relative
         * paths are resolved against: what getcwd() answers in the host. */
        NK_MSG_BROKER_CWD = 19,
        /* UNLINK payload: rest path (as OPEN's). Removes a file beneath a
         * grant with access "create"; the answer carries only the error. */
        NK_MSG_BROKER_UNLINK = 20,
        /*
         * runtime → host, id 0, one datagram, sent once before OPEN or
         * LOAD (after BROKER_CHANNEL, if any), carrying the shared-memory
         * region (shm.h) as its one descriptor (SCM_RIGHTS). Payload: u32
         * version (NK_SHM_VERSION), u32 nslots, u64 slot_data. From then
         * on CALLs go through the region's slots, one host worker for each,
         * and a CALL on the socket is refused; everything else stays on the
         * socket. Because the region overtakes the socket, a request frame
         * carries in aux how many RELEASEs the runtime had sent, and the
         * worker waits until the host has carried out that many; a reply
         * frame carries how many SENDs the host had sent, and the runtime
         * delivers that many before it returns the reply.
         */
        NK_MSG_SHM_REGION = 18,
        /*
         * runtime → host. The first half of LOAD, for the proxy NIF, which
         * must hand BEAM the function table (nif_init) before BEAM gives it
         * load_info (load()): loads the library and checks its entry without
         * running load(). Payload: u32 workers, str library path, u32 n,
         * n × str scope library (as LOAD's).
         * Reply: LOADED or ERROR (NK_PERR_LOAD). Sent once, instead of LOAD.
         */
        NK_MSG_OPEN = 32,
        /*
         * runtime → host, after OPEN: the second half, runs load() once.
         * Payload: rest load_info ETF (empty means the atom []).
         * Reply: LOAD_DONE or ERROR (NK_PERR_LOAD).
         */
        NK_MSG_RUN_LOAD = 33,
        /* host → runtime, reply to RUN_LOAD, UPGRADE and UNLOAD, empty payload. */
        NK_MSG_LOAD_DONE = 34,
        /*
         * runtime → host, once loaded: the module was loaded again while its
         * old code still runs (BEAM's upgrade). Runs the library's
         * upgrade(env, &priv, &old_priv, load_info), priv starting empty
         * and old_priv the current one, which the old instance keeps.
         * Payload: rest
         * load_info ETF. Reply: LOAD_DONE or ERROR (NK_PERR_LOAD).
         */
        NK_MSG_UPGRADE = 35,
        /*
         * runtime → host: an instance was purged. Runs the library's
         * unload(env, priv) with that instance's priv. Payload: u32 which
         * (0: the current instance, 1: the one the last upgrade left old).
         * Reply: LOAD_DONE or ERROR.
         */
        NK_MSG_UNLOAD = 36,
};

/* LOADED's optional last field: which callbacks the library's entry has. */
#define NK_CALLBACK_UPGRADE 1u
#define NK_CALLBACK_UNLOAD 2u

/* Most scope libraries one LOAD or OPEN names. */
#define NK_SCOPE_MAX 64

/* Largest datagram on the broker socket: a header, three u32 and a path of
 * PATH_MAX bytes fit, with room to spare. */
#define NK_BROKER_MSG_MAX 8192
/* BROKER_CHANNEL's list of grants beneath the host's own directories. */
#define NK_BROKER_LOCAL_MAX 64
#define NK_BROKER_CHANNEL_MAX 32768
/* Most addresses one RESOLVE answer carries. */
#define NK_BROKER_RESOLVE_MAX 32

/* RESULT status flag: the term holds no resource handle, so the runtime
 * need not look for any. A host that says so wrongly only leaves its
 * handles as plain references, which mean nothing to anyone else. */
#define NK_RESULT_NO_HANDLES 2u

/* ERROR categories. */
enum nk_proto_error {
        NK_PERR_LOAD = 1,       /* the library could not be loaded */
        NK_PERR_REJECTED = 2,   /* the request was malformed or not allowed */
        NK_PERR_INTERNAL = 3,   /* the host failed (out of memory, …) */
};

const char *nk_msg_type_name(uint32_t type);

/* ---- payload writing (into an nk_buf) ------------------------------------ */

static inline int nk_put_u32(struct nk_buf *b, uint32_t v) { return nk_buf_put(b, &v, sizeof v); }
static inline int nk_put_u64(struct nk_buf *b, uint64_t v) { return nk_buf_put(b, &v, sizeof v); }
static inline int nk_put_str(struct nk_buf *b, const void *s, size_t len)
{
        if (len > UINT32_MAX)
                return -EOVERFLOW;
        int r = nk_put_u32(b, (uint32_t) len);
        return r < 0 ? r : nk_buf_put(b, s, len);
}

/* ---- payload reading: a cursor that never reads past its end ------------- */

struct nk_rd {
        const uint8_t *p;
        size_t left;
};

static inline struct nk_rd nk_rd_init(const void *p, size_t len)
{
        return (struct nk_rd) { .p = p, .left = len };
}

/* Each returns false, consuming nothing, when the payload is too short. */
static inline bool nk_rd_u32(struct nk_rd *r, uint32_t *ret)
{
        if (r->left < 4)
                return false;
        memcpy(ret, r->p, 4);
        r->p += 4;
        r->left -= 4;
        return true;
}

static inline bool nk_rd_u64(struct nk_rd *r, uint64_t *ret)
{
        if (r->left < 8)
                return false;
        memcpy(ret, r->p, 8);
        r->p += 8;
        r->left -= 8;
        return true;
}

/* A str field; *ret points into the payload (not NUL-terminated). Refuses
 * strings longer than max. */
static inline bool nk_rd_str(struct nk_rd *r, size_t max, const uint8_t **ret, size_t *ret_len)
{
        uint32_t n;
        if (r->left < 4)
                return false;
        memcpy(&n, r->p, 4);
        if (n > max || n > r->left - 4)
                return false;
        *ret = r->p + 4;
        *ret_len = n;
        r->p += 4 + (size_t) n;
        r->left -= 4 + (size_t) n;
        return true;
}

/* The rest of the payload. */
static inline void nk_rd_rest(struct nk_rd *r, const uint8_t **ret, size_t *ret_len)
{
        *ret = r->p;
        *ret_len = r->left;
        r->p += r->left;
        r->left = 0;
}

#endif
