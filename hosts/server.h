/* SPDX-License-Identifier: Apache-2.0 */
/* nifkit-host's loader and protocol server (see common/protocol.h). */
#ifndef NIFKIT_HOST_SERVER_H
#define NIFKIT_HOST_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "term.h"

/* The call a process-bound env belongs to; env->call points here while the
 * NIF (or its enif_schedule_nif continuations) runs. */
struct nk_call {
        uint64_t id;                    /* the CALL's request id */
        unsigned index;                 /* function index in the library */
        const ErlNifFunc *func;
};

/* A loaded NIF library. */
struct nk_library {
        void *handle;                   /* dlopen handle */
        const ErlNifEntry *entry;
        void *priv;                     /* what load() (or upgrade()) left in *priv_data */
        void *old_priv;                 /* the instance an upgrade left old, until its unload */
        bool has_old;
        char *path;
};

/* Oldest and newest NIF API minor versions (major 2) the host accepts. */
#define NK_NIF_MINOR_MAX 17

/*
 * Loads the library at path: dlopen(RTLD_NOW | RTLD_LOCAL), nif_init(),
 * version and entry checks, then load(env, &priv, load_info) with load_info
 * decoded from ETF (NULL/0: the atom []). On failure returns -errno and
 * writes a message that names the library and the reason into errbuf
 * (-ENOEXEC: the library is unusable, -EINVAL: malformed load_info).
 */
int nk_loader_load(const char *path, const uint8_t *load_info, size_t load_info_len,
                   struct nk_library *ret, char *errbuf, size_t errlen);

/* nk_loader_load in two halves: open (everything but load()), then load()
 * with load_info, which sets lib->priv. */
int nk_loader_open(const char *path, struct nk_library *ret, char *errbuf, size_t errlen);
int nk_loader_run_load(struct nk_library *lib, const uint8_t *load_info, size_t load_info_len,
                       char *errbuf, size_t errlen);

/* BEAM's upgrade: upgrade(env, &priv, &old_priv, load_info), priv starting
 * NULL; the old instance keeps old_priv until its unload.
 * A library without upgrade() is refused as BEAM refuses it. */
int nk_loader_run_upgrade(struct nk_library *lib, const uint8_t *load_info, size_t load_info_len,
                          char *errbuf, size_t errlen);

/* unload(env, priv) of the current instance, or (old) of the one the last
 * upgrade left old. Nothing to do without unload(). */
int nk_loader_run_unload(struct nk_library *lib, bool old, char *errbuf, size_t errlen);

/*
 * Serves the runtime on channel fd until STOP or until the runtime closes
 * the channel. Returns the process exit status.
 */
int nk_server_run(int fd);

/* Where a call's reply goes: back over the socket, or into the call's
 * shared-memory slot (shm_serve.c). send has nk_transport_send's contract. */
struct nk_reply_sink {
        int (*send)(struct nk_reply_sink *sink, uint32_t type, uint64_t id, const struct iovec *iov, size_t niov);
};

/*
 * Runs one CALL (payload as in protocol.h) on the calling worker thread with
 * env, and sends its RESULT or ERROR, exactly one, to sink. out is the
 * worker's encoding buffer, kept between calls.
 */
struct nk_buf;
void nk_server_call(ErlNifEnv *env, uint64_t id, const uint8_t *payload, size_t payload_len, struct nk_buf *out,
                    struct nk_reply_sink *sink);

/*
 * Calls through shared memory overtake the socket, so two counts keep
 * their order against it (protocol.h, SHM_REGION): how many SENDs have
 * gone out (a reply carries it; the runtime delivers those SENDs before
 * the reply), and how many RELEASEs the main thread carried out (a
 * request carries the runtime's count; the worker waits for it before
 * running the call).
 */
uint64_t nk_server_sends(void);
/* An ERROR reply of category (protocol.h) to request id, through sink. */
__attribute__((format(printf, 4, 5)))
int nk_server_reply_error(struct nk_reply_sink *sink, uint64_t id, uint32_t category, const char *fmt, ...);
void nk_server_wait_releases(uint64_t n);

#endif
