/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nifkit policy explain FILE: what a policy lets the host of a library do,
 * in plain words, and which of its limits this machine would enforce only
 * in part (nk_cgroup_report, which changes nothing).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "explain.h"

static void size_text(uint64_t bytes, char *buf, size_t size)
{
        if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0)
                snprintf(buf, size, "%" PRIu64 " GiB", bytes >> 30);
        else if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0)
                snprintf(buf, size, "%" PRIu64 " MiB", bytes >> 20);
        else if (bytes >= 1024 && bytes % 1024 == 0)
                snprintf(buf, size, "%" PRIu64 " KiB", bytes >> 10);
        else
                snprintf(buf, size, "%" PRIu64 " bytes", bytes);
}

static const char *access_text(enum nk_policy_access a)
{
        switch (a) {
        case NK_POLICY_ACCESS_READ:
                return "read";
        case NK_POLICY_ACCESS_READ_WRITE:
                return "read and write";
        case NK_POLICY_ACCESS_CREATE:
                return "read, write and create";
        }
        return "?";
}

static void endpoints(FILE *out, const char *what, const struct nk_policy_endpoint *eps, size_t n)
{
        if (n == 0)
                return;
        fprintf(out, "  %s:", what);
        for (size_t i = 0; i < n; i++) {
                bool v6 = strchr(eps[i].host, ':') != NULL;
                fprintf(out, "%s %s%s%s%s:%u", i ? "," : "", eps[i].udp ? "udp " : "", v6 ? "[" : "", eps[i].host,
                        v6 ? "]" : "", eps[i].port);
        }
        fputc('\n', out);
}

static void sandbox(FILE *out, const struct nk_policy *p)
{
        switch (p->launcher) {
        case NK_POLICY_LAUNCHER_NATIVE:
        case NK_POLICY_LAUNCHER_BWRAP:
                fprintf(out, "Sandbox: %s.\n"
                             "  The host gets its own user, mount, pid, network, IPC, UTS and cgroup namespaces,\n"
                             "  no capabilities and a seccomp filter; of the machine's files it sees only its\n"
                             "  library, the library's dependencies and what it needs to run, read-only.\n",
                        p->launcher == NK_POLICY_LAUNCHER_BWRAP ? "built by bubblewrap (launcher \"bwrap\")"
                                                                 : "nifkit's own (launcher \"native\")");
                break;
        case NK_POLICY_LAUNCHER_UNSANDBOXED:
                fputs("Sandbox: NONE (launcher \"unsandboxed-development\"). The library runs with every right of\n"
                      "  the VM: nothing below is enforced. For development only.\n",
                      out);
                break;
        }
}

static void files(FILE *out, const struct nk_policy *p)
{
        if (p->nfiles == 0) {
                fputs("Files: none. The host can open no file of the machine.\n", out);
                return;
        }
        fputs("Files: the broker opens, for the host, files beneath\n", out);
        for (size_t i = 0; i < p->nfiles; i++)
                fprintf(out, "  %s (%s%s)\n", p->files[i].path, access_text(p->files[i].access),
                        p->files[i].no_symlinks ? "; symlinks refused" : "");
}

static void network(FILE *out, const struct nk_policy *p)
{
        if (p->nconnect == 0 && p->nlisten == 0) {
                fputs("Network: none. No connection, no listening socket; the host's network holds only\n"
                      "  loopback.\n",
                      out);
                return;
        }
        fputs("Network: the broker opens, for the host, sockets\n", out);
        endpoints(out, "connected to", p->connect, p->nconnect);
        endpoints(out, "listening on", p->listen, p->nlisten);
        if (p->nresolve) {
                fputs("  names resolved for it:", out);
                for (size_t i = 0; i < p->nresolve; i++)
                        fprintf(out, "%s %s", i ? "," : "", p->resolve[i]);
                fputc('\n', out);
        }
}

static void limits(FILE *out, const struct nk_policy *p)
{
        char mem[32], args[32], res[32], slot[32];

        size_text(p->limits.memory_mb << 20, mem, sizeof mem);
        size_text(p->limits.max_args_bytes, args, sizeof args);
        size_text(p->limits.max_result_bytes, res, sizeof res);
        size_text((uint64_t) p->limits.shm_slot_kb << 10, slot, sizeof slot);
        fprintf(out, "Limits:\n"
                     "  memory        %s\n"
                     "  processes     %u, threads included\n"
                     "  CPU           %u%% of one CPU\n",
                mem, p->limits.pids, p->limits.cpu_percent);
        if (p->limits.tmp_mb)
                fprintf(out, "  /tmp          %u MiB, private to the host\n", p->limits.tmp_mb);
        else
                fputs("  /tmp          none\n", out);
        fprintf(out, "  open files    %u\n"
                     "  call timeout  %u ms: a call still running then kills the host\n"
                     "  arguments     %s per call, encoded\n"
                     "  results       %s per call, encoded; a larger one kills the host\n"
                     "  new atoms     %u over the host's life (BEAM never frees atoms)\n",
                p->limits.open_files, p->limits.call_timeout_ms, args, res, p->limits.max_new_atoms);
        fprintf(out, "Calls: %u at a time, %s.\n", p->workers,
                p->transport == NK_POLICY_TRANSPORT_SHM ? "over shared memory" : "over the control socket");
        if (p->transport == NK_POLICY_TRANSPORT_SHM)
                fprintf(out, "  %s of shared memory per worker; larger arguments and results cross in pieces.\n",
                        slot);
        if (p->restart.max_restarts)
                fprintf(out, "Restarts: a host that dies is replaced, at most %u times within %u s; then every call\n"
                             "  fails with restart_limit until the module is loaded again.\n",
                        p->restart.max_restarts, p->restart.period_s);
        else
                fputs("Restarts: none. After the first death every call fails with restart_limit until the\n"
                      "  module is loaded again.\n",
                      out);
}

static void machine(FILE *out, const struct nk_policy *p, const struct nk_cgroup_report *m)
{
        unsigned want = NK_LIMIT_MEMORY | NK_LIMIT_PIDS | NK_LIMIT_CPU;
        unsigned missing = want & ~m->limits;

        fprintf(out, "On this machine (cgroup v2 %s):\n", m->root[0] ? m->root : "not found");
        if (p->launcher == NK_POLICY_LAUNCHER_UNSANDBOXED) {
                fputs("  nothing is enforced: the policy asks for no sandbox.\n", out);
                return;
        }
        if (!missing) {
                fputs("  memory, processes and CPU are enforced by each host's cgroup.\n", out);
                return;
        }
        const char *names[3];
        size_t n = 0;
        if (missing & NK_LIMIT_MEMORY)
                names[n++] = "memory";
        if (missing & NK_LIMIT_PIDS)
                names[n++] = "processes";
        if (missing & NK_LIMIT_CPU)
                names[n++] = "CPU";
        fputs("  not enforced by a cgroup: ", out);
        for (size_t i = 0; i < n; i++)
                fprintf(out, "%s%s", i == 0 ? "" : i + 1 == n ? " and " : ", ", names[i]);
        fputc('\n', out);
        if (m->problem[0])
                fprintf(out, "  why: %s\n", m->problem);
        if (p->cgroup == NK_POLICY_CGROUP_REQUIRED) {
                fputs("  cgroup \"required\": hosts under this policy do NOT start here until that is fixed.\n", out);
                return;
        }
        fputs("  cgroup \"best-effort\": hosts start, and each start says what is not enforced:\n", out);
        if (missing & NK_LIMIT_MEMORY)
                fputs("    memory is bounded only by RLIMIT_AS (address space, not resident memory);\n", out);
        if (missing & NK_LIMIT_PIDS)
                fputs("    processes are not limited per host;\n", out);
        if (missing & NK_LIMIT_CPU)
                fputs("    CPU is not limited;\n", out);
        fputs("    open files, /tmp's size and every file and socket rule above are enforced all the same.\n", out);
}

void nk_policy_explain(FILE *out, const char *name, const struct nk_policy *p, const struct nk_cgroup_report *m)
{
        fprintf(out, "%s: what the host of a library under this policy may do\n\n", name);
        sandbox(out, p);
        files(out, p);
        network(out, p);
        if (p->mode == NK_POLICY_MODE_AUDIT)
                fputs("Mode: AUDIT. What the rules above do not grant is allowed and logged (NIFKIT_AUDIT_LOG),\n"
                      "  to write a policy from (nifkit policy suggest); not for production.\n",
                      out);
        else
                fputs("Mode: enforce. What the rules above do not grant is refused.\n", out);
        fputs("Environment: PATH=/usr/bin:/bin, HOME=/, TMPDIR=/tmp", out);
        if (p->nenv) {
                fputs(", and from the VM's:", out);
                for (size_t i = 0; i < p->nenv; i++)
                        fprintf(out, "%s %s", i ? "," : "", p->env[i]);
                fputs(".\n", out);
        } else {
                fputs("; nothing of the VM's.\n", out);
        }
        limits(out, p);
        fputc('\n', out);
        machine(out, p, m);
}
