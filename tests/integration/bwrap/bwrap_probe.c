/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Started by a launcher in place of nifkit-host (same `--fd 3` contract), it
 * reports what it sees from inside the sandbox, then does what it is told:
 *
 *   "say TEXT" writes TEXT to its stdout and its stderr
 *   "report"   one datagram of "key=value" lines (ids, pid, capabilities,
 *              seccomp, no_new_privs, descriptors, mounts, network,
 *              namespaces, rlimits, environment, /dev)
 *   "sandbox"  what the sandbox holds, as lines that do not depend on the
 *              launcher that built it: every path visible below / (but
 *              inside /proc and /tmp) with its type, the mount points,
 *              every rlimit, the privileges and the filter; in datagrams
 *              of at most 16 KiB, then an empty one
 *   "exit N"   exits with status N
 *   "crash"    dies of a real SIGSEGV (a pid 1 ignores one it raises)
 *   "hang"     waits to be killed
 *
 * It runs under the host's seccomp filter, so it only reads: files opened
 * read-only, readlink, getdents64, getrlimit, the get*id calls.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#define CHANNEL 3

extern char **environ;

static char report[1 << 20];
static size_t used;

__attribute__((format(printf, 1, 2)))
static void put(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(report + used, sizeof report - used, fmt, ap);
        va_end(ap);
        if (n > 0 && (size_t) n < sizeof report - used)
                used += (size_t) n;
}

/* The value of "Key:" in a /proc status-like file, or "?". */
static void put_status(const char *key, const char *file, const char *field)
{
        char line[512], value[256] = "?";
        FILE *f = fopen(file, "re");
        size_t len = strlen(field);
        while (f && fgets(line, sizeof line, f))
                if (strncmp(line, field, len) == 0 && line[len] == ':') {
                        const char *p = line + len + 1;
                        while (*p == ' ' || *p == '\t')
                                p++;
                        snprintf(value, sizeof value, "%.*s", (int) strcspn(p, "\n"), p);
                        break;
                }
        if (f)
                fclose(f);
        put("%s=%s\n", key, value);
}

/* Names in a directory, sorted by the kernel's order, comma-separated. */
static void put_dir(const char *key, const char *path)
{
        put("%s=", key);
        DIR *d = opendir(path);
        struct dirent *e;
        bool first = true;
        while (d && (e = readdir(d)))
                if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                        put("%s%s", first ? "" : ",", e->d_name);
                        first = false;
                }
        if (d)
                closedir(d);
        put("\n");
}

/* The descriptors open besides the one reading /proc/self/fd. */
static void put_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int self = d ? dirfd(d) : -1;
        struct dirent *e;
        bool first = true;
        put("fds=");
        while (d && (e = readdir(d))) {
                if (e->d_name[0] == '.' || atoi(e->d_name) == self)
                        continue;
                put("%s%s", first ? "" : ",", e->d_name);
                first = false;
        }
        if (d)
                closedir(d);
        put("\n");
}

/* Mount point and options of every mount: "mount=/tmp tmpfs rw,... size=…". */
static void put_mounts(void)
{
        char line[1024];
        FILE *f = fopen("/proc/self/mountinfo", "re");
        while (f && fgets(line, sizeof line, f)) {
                /* id parent major:minor root mountpoint options ... - fstype source superopts */
                char root[256], point[256], opts[256], fstype[64], source[256], super[512];
                const char *dash = strstr(line, " - ");
                if (!dash || sscanf(line, "%*s %*s %*s %255s %255s %255s", root, point, opts) != 3 ||
                    sscanf(dash + 3, "%63s %255s %511s", fstype, source, super) != 3)
                        continue;
                put("mount=%s %s %s %s\n", point, fstype, opts, super);
        }
        if (f)
                fclose(f);
}

static void put_link(const char *key, const char *path)
{
        char buf[256];
        ssize_t n = readlink(path, buf, sizeof buf - 1);
        put("%s=%.*s\n", key, n > 0 ? (int) n : 1, n > 0 ? buf : "?");
}

static void put_file_line(const char *key, const char *path)
{
        char line[256] = "?";
        FILE *f = fopen(path, "re");
        if (f && !fgets(line, sizeof line, f))
                strcpy(line, "?");
        if (f)
                fclose(f);
        put("%s=%.*s\n", key, (int) strcspn(line, "\n"), line);
}

/* Whether 127.0.0.1 is a local address: only once lo is up. */
static void put_loopback(void)
{
        char line[256];
        bool up = false;
        FILE *f = fopen("/proc/net/fib_trie", "re");
        while (f && fgets(line, sizeof line, f))
                if (strstr(line, "127.0.0.1"))
                        up = true;
        if (f)
                fclose(f);
        put("loopback_up=%d\n", up);
        /* Interfaces: /proc/net/dev has two header lines, then one per link. */
        f = fopen("/proc/net/dev", "re");
        put("links=");
        bool first = true;
        for (int i = 0; f && fgets(line, sizeof line, f); i++) {
                char name[64];
                if (i >= 2 && sscanf(line, " %63[^:]:", name) == 1) {
                        put("%s%s", first ? "" : ",", name);
                        first = false;
                }
        }
        if (f)
                fclose(f);
        put("\n");
}

static void build_report(int argc, char **argv)
{
        struct rlimit rl;
        char cwd[256];

        put("args=%d %s %s\n", argc, argc > 1 ? argv[1] : "", argc > 2 ? argv[2] : "");
        put("uid=%u\ngid=%u\neuid=%u\npid=%d\n", (unsigned) getuid(), (unsigned) getgid(), (unsigned) geteuid(),
            (int) getpid());
        put_file_line("uid_map", "/proc/self/uid_map");
        put_file_line("gid_map", "/proc/self/gid_map");
        put_status("cap_eff", "/proc/self/status", "CapEff");
        put_status("cap_prm", "/proc/self/status", "CapPrm");
        put_status("cap_bnd", "/proc/self/status", "CapBnd");
        put_status("cap_amb", "/proc/self/status", "CapAmb");
        put_status("no_new_privs", "/proc/self/status", "NoNewPrivs");
        put_status("seccomp", "/proc/self/status", "Seccomp");
        put_fds();
        put_link("fd0", "/proc/self/fd/0");
        put_link("fd1", "/proc/self/fd/1");
        put_link("fd2", "/proc/self/fd/2");
        put_mounts();
        put_loopback();
        static const char *const ns[] = { "user", "mnt", "net", "pid", "ipc", "uts", "cgroup" };
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
                char key[32], path[64];
                snprintf(key, sizeof key, "ns_%s", ns[i]);
                snprintf(path, sizeof path, "/proc/self/ns/%s", ns[i]);
                put_link(key, path);
        }
        put("nofile=%llu\n", getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (unsigned long long) rl.rlim_cur : 0ULL);
        put("core=%llu\n", getrlimit(RLIMIT_CORE, &rl) == 0 ? (unsigned long long) rl.rlim_cur : 1ULL);
        put("cwd=%s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");
        struct utsname u;
        put("hostname=%s\n", uname(&u) == 0 ? u.nodename : "?");
        /* Every variable but the sanitizers' options, which are passed on. */
        put("env=");
        bool first = true;
        for (char **e = environ; *e; e++)
                if (strncmp(*e, "ASAN_OPTIONS=", 13) && strncmp(*e, "UBSAN_OPTIONS=", 14) &&
                    strncmp(*e, "LSAN_OPTIONS=", 13)) {
                        put("%s%s", first ? "" : ",", *e);
                        first = false;
                }
        put("\n");
        put_dir("dev", "/dev");
        put_dir("root", "/");
}

/* Every path below dir, depth first, with its type. */
static void walk(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, e->d_name);
                struct stat st;
                char type = '?';
                if (lstat(path, &st) == 0)
                        type = S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f' : S_ISLNK(st.st_mode) ? 'l' :
                               S_ISCHR(st.st_mode) ? 'c' : 'o';
                put("path=%s %c\n", path, type);
                if (type == 'd' && strcmp(path, "/proc") != 0 && strcmp(path, "/tmp") != 0)
                        walk(path);
        }
        if (d)
                closedir(d);
}

static void build_sandbox(void)
{
        walk("/");
        char line[1024];
        FILE *f = fopen("/proc/self/mountinfo", "re");
        while (f && fgets(line, sizeof line, f)) {
                char point[1024];
                if (sscanf(line, "%*s %*s %*s %*s %1023s", point) == 1)
                        put("mountpoint=%s\n", point);
        }
        if (f)
                fclose(f);
        for (int r = 0; r < RLIM_NLIMITS; r++) {
                struct rlimit rl;
                if (getrlimit(r, &rl) == 0)
                        put("rlimit%d=%llu %llu\n", r, (unsigned long long) rl.rlim_cur,
                             (unsigned long long) rl.rlim_max);
        }
        static const char *const status[] = { "CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb", "NoNewPrivs",
                                              "Seccomp", "Seccomp_filters", NULL };
        f = fopen("/proc/self/status", "re");
        while (f && fgets(line, sizeof line, f))
                for (const char *const *k = status; *k; k++) {
                        size_t len = strlen(*k);
                        if (strncmp(line, *k, len) == 0 && line[len] == ':')
                                put("%s", line);
                }
        if (f)
                fclose(f);
        put("uid=%u gid=%u\n", (unsigned) getuid(), (unsigned) getgid());
}

int main(int argc, char **argv)
{
        char cmd[64];
        for (;;) {
                ssize_t n = recv(CHANNEL, cmd, sizeof cmd - 1, 0);
                if (n <= 0)
                        return 10;
                cmd[n] = '\0';
                if (strcmp(cmd, "report") == 0) {
                        used = 0;
                        build_report(argc, argv);
                        if (send(CHANNEL, report, used, 0) < 0)
                                return 11;
                } else if (strcmp(cmd, "sandbox") == 0) {
                        used = 0;
                        build_sandbox();
                        for (size_t off = 0; off < used; off += 16384) {
                                size_t len = used - off < 16384 ? used - off : 16384;
                                if (send(CHANNEL, report + off, len, 0) < 0)
                                        return 11;
                        }
                        if (send(CHANNEL, "", 0, 0) < 0)
                                return 11;
                } else if (strncmp(cmd, "say ", 4) == 0) {
                        /* To stdout and stderr, one line each. */
                        dprintf(1, "%s (stdout)\n", cmd + 4);
                        dprintf(2, "%s (stderr)\n", cmd + 4);
                } else if (strncmp(cmd, "exit ", 5) == 0) {
                        _exit(atoi(cmd + 5));
                } else if (strcmp(cmd, "crash") == 0) {
                        /* A pointer the compiler cannot see through. */
                        volatile uintptr_t bad = 8;
                        *(volatile int *) bad = 1;
                } else if (strcmp(cmd, "hang") == 0) {
                        /* pause() is not on the allow-list; nanosleep is. */
                        for (;;)
                                sleep(1000);
                }
        }
}
