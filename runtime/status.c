/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The in-memory side of `nifkit status` (status.h). Records are keyed by
 * library path and live as long as the process, so that restarts are
 * counted across the nk_host objects a supervisor creates one after the
 * other (the proxy makes a new one for each restart).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "hash.h"
#include "status.h"
#include "status_file.h"

/*
 * `nifkit wrap` refuses to wrap a library that already embeds libnifkit's
 * supervision, i.e. a proxy, and recognises one by this section. Kept here
 * because every host start goes through this file, so every object that
 * can supervise a host (the proxy NIF) links it.
 */
__attribute__((used, section(".nifkit_proxy_marker"))) static const char proxy_marker[] =
        "nifkit_proxy_marker: this object runs NIF libraries in nifkit hosts";

struct nk_status {
        struct nk_status *next;
        char *library;
        char *cgroup;
        uint64_t key;           /* names the state file: PID-KEY.json */
        unsigned users;         /* attached hosts */
        bool died;              /* the last host died: the next start is a restart */
        bool dirty;             /* changed since the file was written */
        bool on_disk;
        struct nk_stats st;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct nk_status *records;
static unsigned live;                   /* records with users > 0 */
static bool writer_asleep;              /* waits for something to change, without a deadline */
static pthread_t writer;
static bool writer_joinable, writer_running, stopping;

uint64_t nk_status_now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static uint64_t read_u64_file(const char *path, const char *prefix)
{
        _cleanup_free_ char *line = NULL;
        size_t cap = 0, plen = prefix ? strlen(prefix) : 0;
        uint64_t v = 0;
        FILE *f = fopen(path, "re");

        if (!f)
                return 0;
        while (getline(&line, &cap, f) > 0) {
                if (prefix && strncmp(line, prefix, plen) != 0)
                        continue;
                v = strtoull(line + plen, NULL, 10);
                break;
        }
        fclose(f);
        return v;
}

/* The cgroup's memory.peak (Linux 5.19+, memory controller enabled), else
 * the host process's high-water mark, which misses its children but is
 * there on every machine. Called with the lock held, while the host lives. */
static void sample_memory(struct nk_status *s)
{
        char path[PATH_MAX];
        uint64_t v = 0;

        if (s->cgroup && snprintf(path, sizeof path, "%s/memory.peak", s->cgroup) < (int) sizeof path)
                v = read_u64_file(path, NULL);
        if (v == 0 && s->st.host_pid > 0) {
                snprintf(path, sizeof path, "/proc/%d/status", s->st.host_pid);
                v = read_u64_file(path, "VmHWM:") * 1024;
        }
        if (v > s->st.memory_peak)
                s->st.memory_peak = v;
}

/*
 * Every proxy copy in a VM has its own copy of this file and of its
 * statics, so the name cannot come from a counter here: it comes from the
 * library path (FNV-1a), which differs between copies by construction.
 */
static uint64_t path_key(const char *path)
{
        return nk_fnv1a64(path);
}

static void file_name(const struct nk_status *s, char *buf, size_t size)
{
        snprintf(buf, size, "%d-%016" PRIx64 ".json", (int) getpid(), s->key);
}

/* Lock held. Best effort: a missing or full directory costs the file, not
 * the calls. */
static void write_record(struct nk_status *s)
{
        struct nk_status_record *rec;
        char dir[PATH_MAX], name[64];

        if (stopping)
                return;

        if (nk_status_dir(true, dir, sizeof dir) < 0)
                return;
        rec = calloc(1, sizeof *rec);
        if (!rec)
                return;
        sample_memory(s);
        nk_stats_percentiles(&s->st);
        rec->runtime_pid = (int) getpid();
        snprintf(rec->library, sizeof rec->library, "%s", s->library);
        rec->updated = (int64_t) time(NULL);
        rec->st = s->st;
        file_name(s, name, sizeof name);
        if (nk_status_record_write(dir, name, rec) >= 0) {
                s->on_disk = true;
                s->dirty = false;
        }
        free(rec);
}

static void remove_record(struct nk_status *s)
{
        char dir[PATH_MAX], name[64], path[PATH_MAX + 64];

        if (!s->on_disk || nk_status_dir(false, dir, sizeof dir) < 0)
                return;
        file_name(s, name, sizeof name);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        unlink(path);
        s->on_disk = false;
}

/* Lock held: s changed, and the writer learns it if it sleeps. */
static void mark_dirty(struct nk_status *s)
{
        s->dirty = true;
        if (writer_asleep) {
                writer_asleep = false;
                pthread_cond_broadcast(&wake);
        }
}

static bool any_dirty(void)
{
        for (struct nk_status *s = records; s; s = s->next)
                if (s->users > 0 && s->dirty)
                        return true;
        return false;
}

/* Rewrites what changed at most once a second, sleeps without a deadline
 * while nothing changes (an idle VM with a thousand libraries must not wake
 * a thousand times a second), and ends when no host is up, so that no
 * thread of ours runs when the proxy's copy is unloaded. */
static void *writer_main(void *arg)
{
        pthread_setname_np(pthread_self(), "nk-status");
        pthread_mutex_lock(&lock);
        while (!stopping && live > 0) {
                if (!any_dirty()) {
                        writer_asleep = true;
                        pthread_cond_wait(&wake, &lock);
                        writer_asleep = false;
                        continue;
                }
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += 1;
                pthread_cond_timedwait(&wake, &lock, &until);
                for (struct nk_status *s = records; s; s = s->next)
                        if (s->users > 0 && s->dirty)
                                write_record(s);
        }
        writer_running = false;
        pthread_mutex_unlock(&lock);
        return NULL;
}

/* Lock held. */
static void ensure_writer(void)
{
        if (writer_running || stopping)
                return;
        if (writer_joinable) {
                /* It has left its loop; joining waits for its last instructions. */
                pthread_mutex_unlock(&lock);
                pthread_join(writer, NULL);
                pthread_mutex_lock(&lock);
                writer_joinable = false;
                if (writer_running)
                        return;
        }
        if (pthread_create(&writer, NULL, writer_main, NULL) == 0) {
                writer_running = true;
                writer_joinable = true;
        }
}

/*
 * dlclose of the proxy, or exit: our thread must not run this file's code
 * after, and the files must go. The records stay allocated: at exit,
 * schedulers may still be finishing calls that count into them (the proxy
 * leaves its hosts alone then for the same reason).
 */
__attribute__((destructor)) static void status_fini(void)
{
        pthread_mutex_lock(&lock);
        stopping = true;
        pthread_cond_broadcast(&wake);
        bool join = writer_joinable;
        writer_joinable = false;
        pthread_mutex_unlock(&lock);
        if (join)
                pthread_join(writer, NULL);
        pthread_mutex_lock(&lock);
        for (struct nk_status *s = records; s; s = s->next)
                remove_record(s);
        pthread_mutex_unlock(&lock);
}

static struct nk_status *find_or_add(const char *library)
{
        struct nk_status *s;

        for (s = records; s; s = s->next)
                if (strcmp(s->library, library) == 0)
                        return s;
        s = calloc(1, sizeof *s);
        if (!s)
                return NULL;
        s->library = strdup(library);
        if (!s->library) {
                free(s);
                return NULL;
        }
        s->key = path_key(library);
        s->st.host_pid = -1;
        s->next = records;
        records = s;
        return s;
}

static void detach(struct nk_status_ref *ref)
{
        struct nk_status *s = ref->st;

        if (!ref->attached)
                return;
        ref->attached = false;
        if (--s->users == 0) {
                live--;
                remove_record(s);
                if (live == 0)
                        pthread_cond_broadcast(&wake);  /* the writer ends */
        }
}

void nk_status_started(struct nk_status_ref *ref, const char *library, int host_pid, const char *cgroup)
{
        struct nk_status *s;
        uint64_t restarts;

        pthread_mutex_lock(&lock);
        detach(ref);
        s = find_or_add(library);
        if (!s) {
                pthread_mutex_unlock(&lock);
                return;
        }
        ref->st = s;
        ref->attached = true;
        ref->host_pid = host_pid;
        if (s->users++ == 0)
                live++;
        if (s->died)
                s->st.restarts++;
        s->died = false;
        s->st.host_pid = host_pid;
        s->st.started = (int64_t) time(NULL);
        s->st.memory_peak = 0;
        free(s->cgroup);
        s->cgroup = cgroup ? strdup(cgroup) : NULL;
        restarts = s->st.restarts;
        write_record(s);
        ensure_writer();
        pthread_mutex_unlock(&lock);
        nk_log_event(NK_LOG_INFO, library, "host_started", NK_LOG_INT("host_pid", host_pid),
                     NK_LOG_INT("restarts", restarts));
}

static const char *reason_of(const nk_error *err)
{
        const char *kind;

        if (err->reason[0])
                return err->reason;
        kind = nk_error_kind_name(err->kind);
        return kind ? kind : "other";
}

static bool is_death(const nk_error *err)
{
        return err->kind == NK_ERR_HOST_DIED || err->kind == NK_ERR_TIMEOUT || err->kind == NK_ERR_PROTOCOL;
}

/* Lock held. */
static void count_error(struct nk_stats *st, const char *reason)
{
        unsigned i;

        st->errors++;
        for (i = 0; i < st->nreasons; i++)
                if (strcmp(st->errors_by_reason[i].reason, reason) == 0)
                        break;
        if (i == st->nreasons) {
                if (i == NK_STATS_MAX_REASONS) {
                        /* The last slot becomes the sum of the reasons that found no room. */
                        i = NK_STATS_MAX_REASONS - 1;
                        reason = "other";
                } else {
                        st->nreasons++;
                }
                snprintf(st->errors_by_reason[i].reason, sizeof st->errors_by_reason[i].reason, "%s", reason);
        }
        st->errors_by_reason[i].count++;
}

void nk_status_call(struct nk_status_ref *ref, uint64_t ns, const nk_error *err)
{
        struct nk_status *s = ref->st;
        uint64_t us = ns / 1000;
        unsigned b = 0;
        bool died = false;
        int pid = -1;

        if (!s)
                return;
        while (b < NK_STATS_LATENCY_BUCKETS - 1 && us >= (1ull << b))
                b++;
        pthread_mutex_lock(&lock);
        s->st.calls++;
        s->st.latency_us[b]++;
        s->st.latency_sum_ns += ns;
        if (err) {
                count_error(&s->st, reason_of(err));
                if (is_death(err) && ref->attached && !s->died) {
                        s->died = died = true;
                        snprintf(s->st.last_reason, sizeof s->st.last_reason, "%s", reason_of(err));
                        pid = s->st.host_pid;
                        sample_memory(s);
                        write_record(s);
                }
        }
        mark_dirty(s);
        pthread_mutex_unlock(&lock);
        if (died)
                nk_log_event(NK_LOG_WARNING, s->library, "host_died", NK_LOG_INT("host_pid", pid),
                             NK_LOG_STR("reason", reason_of(err)), NK_LOG_STR("message", err->msg));
        else if (err)
                nk_log_event(NK_LOG_DEBUG, s->library, "call_failed", NK_LOG_STR("reason", reason_of(err)),
                             NK_LOG_STR("message", err->msg));
}

void nk_status_stopped(struct nk_status_ref *ref, const nk_error *death)
{
        struct nk_status *s = ref->st;
        bool died = false;
        int pid;

        if (!s || !ref->attached)
                return;
        pthread_mutex_lock(&lock);
        pid = ref->host_pid;
        /* A death no call saw (the host crashed while idle). */
        if (death && death->reason[0] && strcmp(death->reason, "stopped") != 0 && !s->died) {
                s->died = died = true;
                snprintf(s->st.last_reason, sizeof s->st.last_reason, "%s", death->reason);
        }
        /* A supervisor may have started the next host before freeing this one. */
        if (s->st.host_pid == pid)
                s->st.host_pid = -1;
        detach(ref);
        if (s->users > 0)
                mark_dirty(s);
        pthread_mutex_unlock(&lock);
        if (died)
                nk_log_event(NK_LOG_WARNING, s->library, "host_died", NK_LOG_INT("host_pid", pid),
                             NK_LOG_STR("reason", death->reason), NK_LOG_STR("message", death->msg));
        nk_log_event(NK_LOG_INFO, s->library, "host_stopped", NK_LOG_INT("host_pid", pid));
}

int nk_status_get(const struct nk_status_ref *ref, struct nk_stats *ret)
{
        struct nk_status *s = ref->st;

        if (!s)
                return -ENOTCONN;
        pthread_mutex_lock(&lock);
        if (ref->attached)
                sample_memory(s);
        nk_stats_percentiles(&s->st);
        *ret = s->st;
        pthread_mutex_unlock(&lock);
        return 0;
}
