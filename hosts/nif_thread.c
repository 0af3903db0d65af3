/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enif_* threads, locks and thread-specific data, on pthreads.
 *
 * BEAM's opaque lock types are ours to define. Names are kept because NIFs
 * may read them back (enif_mutex_name and friends) for their diagnostics.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_internal.h"

struct ErlDrvMutex_ {
        pthread_mutex_t m;
        char *name;
};

struct ErlDrvCond_ {
        pthread_cond_t c;
        char *name;
};

struct ErlDrvRWLock_ {
        pthread_rwlock_t l;
        char *name;
};

/* Lock creation failing is a resource shortage; BEAM returns NULL then. */
static char *dup_name(const char *name)
{
        return strdup(name ? name : "");
}

ErlNifMutex *enif_mutex_create(char *name)
{
        ErlNifMutex *mtx = calloc(1, sizeof(*mtx));

        if (!mtx)
                return NULL;
        mtx->name = dup_name(name);
        if (!mtx->name || pthread_mutex_init(&mtx->m, NULL) != 0) {
                free(mtx->name);
                free(mtx);
                return NULL;
        }
        return mtx;
}

void enif_mutex_destroy(ErlNifMutex *mtx)
{
        if (!mtx)
                return;
        pthread_mutex_destroy(&mtx->m);
        free(mtx->name);
        free(mtx);
}

/* 0 when locked, EBUSY when held elsewhere: BEAM's values. */
int enif_mutex_trylock(ErlNifMutex *mtx)
{
        return pthread_mutex_trylock(&mtx->m);
}

void enif_mutex_lock(ErlNifMutex *mtx)
{
        pthread_mutex_lock(&mtx->m);
}

void enif_mutex_unlock(ErlNifMutex *mtx)
{
        pthread_mutex_unlock(&mtx->m);
}

char *enif_mutex_name(ErlNifMutex *mtx)
{
        return mtx->name;
}

ErlNifCond *enif_cond_create(char *name)
{
        ErlNifCond *cnd = calloc(1, sizeof(*cnd));

        if (!cnd)
                return NULL;
        cnd->name = dup_name(name);
        if (!cnd->name || pthread_cond_init(&cnd->c, NULL) != 0) {
                free(cnd->name);
                free(cnd);
                return NULL;
        }
        return cnd;
}

void enif_cond_destroy(ErlNifCond *cnd)
{
        if (!cnd)
                return;
        pthread_cond_destroy(&cnd->c);
        free(cnd->name);
        free(cnd);
}

void enif_cond_signal(ErlNifCond *cnd)
{
        pthread_cond_signal(&cnd->c);
}

void enif_cond_broadcast(ErlNifCond *cnd)
{
        pthread_cond_broadcast(&cnd->c);
}

/* Like BEAM's, may wake spuriously: callers loop on their predicate. */
void enif_cond_wait(ErlNifCond *cnd, ErlNifMutex *mtx)
{
        pthread_cond_wait(&cnd->c, &mtx->m);
}

char *enif_cond_name(ErlNifCond *cnd)
{
        return cnd->name;
}

ErlNifRWLock *enif_rwlock_create(char *name)
{
        ErlNifRWLock *l = calloc(1, sizeof(*l));

        if (!l)
                return NULL;
        l->name = dup_name(name);
        if (!l->name || pthread_rwlock_init(&l->l, NULL) != 0) {
                free(l->name);
                free(l);
                return NULL;
        }
        return l;
}

void enif_rwlock_destroy(ErlNifRWLock *l)
{
        if (!l)
                return;
        pthread_rwlock_destroy(&l->l);
        free(l->name);
        free(l);
}

int enif_rwlock_tryrlock(ErlNifRWLock *l)
{
        return pthread_rwlock_tryrdlock(&l->l);
}

void enif_rwlock_rlock(ErlNifRWLock *l)
{
        pthread_rwlock_rdlock(&l->l);
}

void enif_rwlock_runlock(ErlNifRWLock *l)
{
        pthread_rwlock_unlock(&l->l);
}

int enif_rwlock_tryrwlock(ErlNifRWLock *l)
{
        return pthread_rwlock_trywrlock(&l->l);
}

void enif_rwlock_rwlock(ErlNifRWLock *l)
{
        pthread_rwlock_wrlock(&l->l);
}

void enif_rwlock_rwunlock(ErlNifRWLock *l)
{
        pthread_rwlock_unlock(&l->l);
}

char *enif_rwlock_name(ErlNifRWLock *l)
{
        return l->name;
}

/* ---- thread-specific data ------------------------------------------------ */

/* ErlNifTSDKey is an int; pthread_key_t is an unsigned int on glibc. */
_Static_assert(sizeof(pthread_key_t) <= sizeof(ErlNifTSDKey), "pthread_key_t fits ErlNifTSDKey");

int enif_tsd_key_create(char *name, ErlNifTSDKey *key)
{
        pthread_key_t k;
        int r = pthread_key_create(&k, NULL);

        if (r != 0)
                return r;
        *key = (ErlNifTSDKey) k;
        return 0;
}

void enif_tsd_key_destroy(ErlNifTSDKey key)
{
        pthread_key_delete((pthread_key_t) key);
}

void enif_tsd_set(ErlNifTSDKey key, void *data)
{
        pthread_setspecific((pthread_key_t) key, data);
}

void *enif_tsd_get(ErlNifTSDKey key)
{
        return pthread_getspecific((pthread_key_t) key);
}

/* ---- threads ------------------------------------------------------------- */

_Static_assert(sizeof(pthread_t) <= sizeof(ErlNifTid), "pthread_t fits ErlNifTid");

static inline ErlNifTid tid_of(pthread_t t)
{
        return (ErlNifTid) (uintptr_t) t;
}

static inline pthread_t pthread_of(ErlNifTid tid)
{
        return (pthread_t) (uintptr_t) tid;
}

static _Thread_local int thread_type = ERL_NIF_THR_UNDEFINED;

void nk_set_thread_type(int type)
{
        thread_type = type;
}

int enif_thread_type(void)
{
        return thread_type;
}

ErlNifThreadOpts *enif_thread_opts_create(char *name)
{
        ErlNifThreadOpts *opts = malloc(sizeof(*opts));

        if (!opts)
                return NULL;
        opts->suggested_stack_size = -1;        /* default size */
        return opts;
}

void enif_thread_opts_destroy(ErlNifThreadOpts *opts)
{
        free(opts);
}

/* Names of the threads enif_thread_create made, until they are joined. */
struct thread_rec {
        struct thread_rec *next;
        pthread_t tid;
        char *name;
};

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct thread_rec *threads;

struct thread_start {
        void *(*func)(void *);
        void *arg;
        char comm[16];          /* the kernel keeps 15 bytes; enif_thread_name keeps all */
};

static void *thread_main(void *p)
{
        struct thread_start st = *(struct thread_start *) p;

        free(p);
        thread_type = ERL_NIF_THR_UNDEFINED;
        /* Named from inside: pthread_setname_np on another thread writes
         * /proc/self/task/N/comm, an open for writing that the host's
         * seccomp filter refuses; PR_SET_NAME on oneself is allowed. */
        if (st.comm[0])
                (void) prctl(PR_SET_NAME, st.comm, 0, 0, 0);
        return st.func(st.arg);
}

/*
 * suggested_stack_size is in kilowords, as for BEAM's driver and NIF
 * threads; negative means the default. BEAM adds a page for the system and
 * keeps the result within its minimum and maximum thread stack sizes.
 */
static size_t stack_bytes(int kilowords)
{
        long page = sysconf(_SC_PAGESIZE);
        size_t bytes = (size_t) kilowords * 1024 * sizeof(void *);
        size_t min = PTHREAD_STACK_MIN + (size_t) page;
        size_t max = (size_t) 8192 * 1024 * sizeof(void *);

        if (page <= 0)
                page = 4096;
        bytes = (bytes + (size_t) page - 1) & ~((size_t) page - 1);
        bytes += (size_t) page;
        if (bytes < min)
                bytes = min;
        if (bytes > max)
                bytes = max;
        return bytes;
}

/* 0, or an errno value (EAGAIN, ENOMEM, …) as BEAM returns. */
int enif_thread_create(char *name, ErlNifTid *tid, void *(*func)(void *), void *args,
                       ErlNifThreadOpts *opts)
{
        struct thread_start *st;
        struct thread_rec *rec;
        pthread_attr_t attr;
        pthread_t t;
        int r;

        st = malloc(sizeof(*st));
        rec = calloc(1, sizeof(*rec));
        if (!st || !rec) {
                free(st);
                free(rec);
                return ENOMEM;
        }
        rec->name = dup_name(name);
        if (!rec->name) {
                free(st);
                free(rec);
                return ENOMEM;
        }
        st->func = func;
        st->arg = args;
        st->comm[0] = '\0';
        if (name) {
                strncpy(st->comm, name, sizeof(st->comm) - 1);
                st->comm[sizeof(st->comm) - 1] = '\0';
        }

        r = pthread_attr_init(&attr);
        if (r != 0)
                goto fail;
        if (opts && opts->suggested_stack_size >= 0)
                pthread_attr_setstacksize(&attr, stack_bytes(opts->suggested_stack_size));

        /* Registered before the thread can run: it may ask its own name. */
        pthread_mutex_lock(&threads_lock);
        r = pthread_create(&t, &attr, thread_main, st);
        if (r == 0) {
                rec->tid = t;
                rec->next = threads;
                threads = rec;
        }
        pthread_mutex_unlock(&threads_lock);
        pthread_attr_destroy(&attr);
        if (r != 0)
                goto fail;
        *tid = tid_of(t);
        return 0;
fail:
        free(st);
        free(rec->name);
        free(rec);
        return r;
}

ErlNifTid enif_thread_self(void)
{
        return tid_of(pthread_self());
}

int enif_equal_tids(ErlNifTid tid1, ErlNifTid tid2)
{
        return pthread_equal(pthread_of(tid1), pthread_of(tid2)) != 0;
}

void enif_thread_exit(void *resp)
{
        pthread_exit(resp);
}

int enif_thread_join(ErlNifTid tid, void **respp)
{
        pthread_t t = pthread_of(tid);
        struct thread_rec **pp, *rec = NULL;
        int r = pthread_join(t, respp);

        if (r != 0)
                return r;
        pthread_mutex_lock(&threads_lock);
        for (pp = &threads; *pp; pp = &(*pp)->next)
                if (pthread_equal((*pp)->tid, t)) {
                        rec = *pp;
                        *pp = rec->next;
                        break;
                }
        pthread_mutex_unlock(&threads_lock);
        if (rec) {
                free(rec->name);
                free(rec);
        }
        return 0;
}

/* The name given to enif_thread_create; NULL for threads it did not make
 * (BEAM also has no name for threads it does not know). */
char *enif_thread_name(ErlNifTid tid)
{
        pthread_t t = pthread_of(tid);
        char *name = NULL;

        pthread_mutex_lock(&threads_lock);
        for (struct thread_rec *r = threads; r; r = r->next)
                if (pthread_equal(r->tid, t)) {
                        name = r->name;
                        break;
                }
        pthread_mutex_unlock(&threads_lock);
        return name;
}
