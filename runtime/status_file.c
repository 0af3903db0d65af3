/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "macro.h"
#include "status_file.h"

static void freep(void *p)
{
        free(*(void **) p);
}

/* jansson's own cleanup (json_auto_t) */
#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))

static void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}

/* A directory of our own under a world-writable one must not be somebody
 * else's (or a symlink they planted), nor one others may write into: a
 * group- or other-writable directory lets them plant state files or
 * remove ours. */
int nk_status_own_dir(const char *path, mode_t mode)
{
        struct stat st;

        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return -errno;
        if (lstat(path, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
                return -EPERM;
        return 0;
}

/* The caller's choice (nk_status_set_dir), or "" for the defaults. */
static char chosen[PATH_MAX];
static pthread_mutex_t chosen_lock = PTHREAD_MUTEX_INITIALIZER;

NK_EXPORT int nk_status_set_dir(const char *dir)
{
        if (dir && (dir[0] != '/' || strlen(dir) >= sizeof chosen))
                return -EINVAL;
        pthread_mutex_lock(&chosen_lock);
        snprintf(chosen, sizeof chosen, "%s", dir ? dir : "");
        pthread_mutex_unlock(&chosen_lock);
        return 0;
}

/* Candidate i (0..2) of the directories, or -ENOENT when it does not apply. */
static int candidate(int i, char *buf, size_t size)
{
        int n;

        switch (i) {
        case 0:
                pthread_mutex_lock(&chosen_lock);
                n = chosen[0] ? snprintf(buf, size, "%s", chosen) : -1;
                pthread_mutex_unlock(&chosen_lock);
                break;
        case 1:
                n = snprintf(buf, size, "/run/nifkit");
                break;
        default:
                n = snprintf(buf, size, "/tmp/nifkit-%u", (unsigned) geteuid());
                break;
        }
        if (n < 0)
                return -ENOENT;
        return (size_t) n < size ? 0 : -ENAMETOOLONG;
}

int nk_status_dir(bool create, char *buf, size_t size)
{
        int r;

        for (int i = 0; i < 3; i++) {
                r = candidate(i, buf, size);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                if (i == 1 && access("/run", W_OK) < 0)
                        continue;
                if (!create)
                        return 0;
                if (i == 2)
                        return nk_status_own_dir(buf, 0700);
                if (mkdir(buf, i == 1 ? 0755 : 0700) < 0 && errno != EEXIST)
                        return -errno;
                return 0;
        }
        return -ENOENT;
}

int nk_status_record_format(const struct nk_status_record *rec, char **ret)
{
        const struct nk_stats *st = &rec->st;
        _cleanup_json_ json_t *errors = json_object(), *hist = json_array();
        json_t *o;
        char *text;

        if (!errors || !hist)
                return -ENOMEM;
        for (unsigned i = 0; i < st->nreasons && i < NK_STATS_MAX_REASONS; i++)
                if (json_object_set_new(errors, st->errors_by_reason[i].reason,
                                        json_integer((json_int_t) st->errors_by_reason[i].count)) < 0)
                        return -ENOMEM;
        for (unsigned i = 0; i < NK_STATS_LATENCY_BUCKETS; i++)
                if (json_array_append_new(hist, json_integer((json_int_t) st->latency_us[i])) < 0)
                        return -ENOMEM;
        o = json_pack("{s:i, s:i, s:s, s:I, s:I, s:I, s:I, s:O, s:I, s:s, s:I, s:I, s:I, s:O, s:I}",
                      "runtime_pid", rec->runtime_pid,
                      "host_pid", st->host_pid,
                      "library", rec->library,
                      "started", (json_int_t) st->started,
                      "updated", (json_int_t) rec->updated,
                      "calls", (json_int_t) st->calls,
                      "errors_total", (json_int_t) st->errors,
                      "errors", errors,
                      "restarts", (json_int_t) st->restarts,
                      "last_reason", st->last_reason,
                      "p50_us", (json_int_t) st->p50_us,
                      "p99_us", (json_int_t) st->p99_us,
                      "memory_peak", (json_int_t) st->memory_peak,
                      "latency_us_log2", hist,
                      "latency_sum_ns", (json_int_t) (st->latency_sum_ns > INT64_MAX ? INT64_MAX : st->latency_sum_ns));
        if (!o)
                return -ENOMEM;
        /* Escapes every string, so a library path cannot break the object. */
        text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
        json_decref(o);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}

static uint64_t get_u64(json_t *o, const char *key)
{
        json_t *v = json_object_get(o, key);
        return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t) json_integer_value(v) : 0;
}

int nk_status_record_parse(const char *text, struct nk_status_record *ret)
{
        _cleanup_json_ json_t *o = json_loads(text, 0, NULL);
        struct nk_status_record rec = { 0 };
        json_t *lib, *pid, *hpid, *reason, *errors, *hist, *v;
        const char *key;
        size_t i;

        if (!json_is_object(o))
                return -EINVAL;
        lib = json_object_get(o, "library");
        pid = json_object_get(o, "runtime_pid");
        hpid = json_object_get(o, "host_pid");
        if (!json_is_string(lib) || !json_is_integer(pid) || !json_is_integer(hpid) ||
            json_integer_value(pid) <= 0 || json_integer_value(pid) > INT_MAX)
                return -EINVAL;
        if (snprintf(rec.library, sizeof rec.library, "%s", json_string_value(lib)) >= (int) sizeof rec.library)
                return -EINVAL;
        rec.runtime_pid = (int) json_integer_value(pid);
        rec.st.host_pid = json_integer_value(hpid) > 0 && json_integer_value(hpid) <= INT_MAX
                          ? (int) json_integer_value(hpid) : -1;
        rec.updated = (int64_t) get_u64(o, "updated");
        rec.st.started = (int64_t) get_u64(o, "started");
        rec.st.calls = get_u64(o, "calls");
        rec.st.errors = get_u64(o, "errors_total");
        rec.st.restarts = get_u64(o, "restarts");
        rec.st.p50_us = get_u64(o, "p50_us");
        rec.st.p99_us = get_u64(o, "p99_us");
        rec.st.memory_peak = get_u64(o, "memory_peak");
        rec.st.latency_sum_ns = get_u64(o, "latency_sum_ns");
        reason = json_object_get(o, "last_reason");
        if (json_is_string(reason))
                snprintf(rec.st.last_reason, sizeof rec.st.last_reason, "%s", json_string_value(reason));
        errors = json_object_get(o, "errors");
        json_object_foreach(errors, key, v) {
                if (rec.st.nreasons == NK_STATS_MAX_REASONS || !json_is_integer(v))
                        break;
                snprintf(rec.st.errors_by_reason[rec.st.nreasons].reason,
                         sizeof rec.st.errors_by_reason[0].reason, "%s", key);
                rec.st.errors_by_reason[rec.st.nreasons++].count = get_u64(errors, key);
        }
        hist = json_object_get(o, "latency_us_log2");
        json_array_foreach(hist, i, v) {
                if (i >= NK_STATS_LATENCY_BUCKETS)
                        break;
                rec.st.latency_us[i] = json_is_integer(v) && json_integer_value(v) > 0
                                       ? (uint64_t) json_integer_value(v) : 0;
        }
        *ret = rec;
        return 0;
}

int nk_status_record_write(const char *dir, const char *name, const struct nk_status_record *rec)
{
        __attribute__((cleanup(freep))) char *text = NULL;
        char path[PATH_MAX], tmp[PATH_MAX];
        size_t len;
        int fd, r;

        r = nk_status_record_format(rec, &text);
        if (r < 0)
                return r;
        if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int) sizeof path ||
            snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, name) >= (int) sizeof tmp)
                return -ENAMETOOLONG;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        len = strlen(text);
        text[len] = '\n';       /* json_dumps' NUL: the file ends in a newline */
        r = write(fd, text, len + 1) == (ssize_t) (len + 1) ? 0 : -EIO;
        text[len] = '\0';
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}

static bool alive(int pid)
{
        return kill(pid, 0) == 0 || errno == EPERM;
}

static int read_file(int dfd, const char *name, char **ret)
{
        char buf[16384];
        ssize_t n;
        int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n < 0)
                return -EIO;
        buf[n] = '\0';
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

static int list_dir(const char *dir, int (*fn)(const struct nk_status_record *, void *), void *arg)
{
        __attribute__((cleanup(closedirp))) DIR *d = opendir(dir);
        struct dirent *de;
        int count = 0;

        if (!d)
                return 0;
        while ((de = readdir(d))) {
                __attribute__((cleanup(freep))) char *text = NULL;
                struct nk_status_record *rec;
                size_t n = strlen(de->d_name);
                int r;

                if (de->d_name[0] == '.' || n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
                        continue;
                if (read_file(dirfd(d), de->d_name, &text) < 0)
                        continue;
                rec = malloc(sizeof *rec);
                if (!rec)
                        return -ENOMEM;
                if (nk_status_record_parse(text, rec) < 0) {
                        free(rec);
                        continue;
                }
                if (!alive(rec->runtime_pid)) {
                        /* A runtime killed before its destructors ran left it:
                         * whoever reads it first removes it, where allowed. */
                        (void) unlinkat(dirfd(d), de->d_name, 0);
                        free(rec);
                        continue;
                }
                r = fn(rec, arg);
                free(rec);
                if (r < 0)
                        return r;
                count++;
        }
        return count;
}

int nk_status_list(int (*fn)(const struct nk_status_record *rec, void *arg), void *arg)
{
        char dirs[4][PATH_MAX];
        int total = 0;

        for (int i = 0; i < 4; i++) {
                struct stat st, other;
                bool seen = false;
                int r;

                if (candidate(i, dirs[i], sizeof dirs[i]) < 0) {
                        dirs[i][0] = '\0';
                        continue;
                }
                /* $NIFKIT_STATUS_DIR replaces the others, for writers and readers alike. */
                if (i == 0)
                        return list_dir(dirs[0], fn, arg);
                /* The same directory under two names ($XDG_RUNTIME_DIR may be /run/…). */
                if (stat(dirs[i], &st) < 0)
                        continue;
                for (int j = 0; j < i; j++)
                        if (dirs[j][0] && stat(dirs[j], &other) == 0 && other.st_dev == st.st_dev &&
                            other.st_ino == st.st_ino)
                                seen = true;
                if (seen)
                        continue;
                r = list_dir(dirs[i], fn, arg);
                if (r < 0)
                        return r;
                total += r;
        }
        return total;
}

void nk_stats_percentiles(struct nk_stats *st)
{
        uint64_t total = 0, seen = 0;

        st->p50_us = st->p99_us = 0;
        for (unsigned i = 0; i < NK_STATS_LATENCY_BUCKETS; i++)
                total += st->latency_us[i];
        if (total == 0)
                return;
        for (unsigned i = 0; i < NK_STATS_LATENCY_BUCKETS; i++) {
                seen += st->latency_us[i];
                if (!st->p50_us && seen * 2 >= total)
                        st->p50_us = 1ull << i;
                if (seen * 100 >= total * 99) {
                        st->p99_us = 1ull << i;
                        break;
                }
        }
}
