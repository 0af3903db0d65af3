/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The native launcher starts the host as the first process of a new pid
 * namespace, its init. The kernel protects an init from signals sent from
 * inside its namespace whose action is the default: raise(SIGSEGV) or
 * abort() in a NIF would be ignored and the NIF would carry on past the
 * point where it asked to die. Only signals the kernel forces for a fault
 * (a bad access, an illegal instruction, a division by zero) kill an init
 * whose action is the default.
 *
 * So when the host is pid 1 it catches the fatal signals and, in the
 * handler, restores the default action and causes the matching fault, so
 * that the runtime's wait status names the signal the NIF raised. A real
 * fault takes the same path and ends the same way. Where no fault produces
 * the signal (SIGABRT, and SIGBUS/SIGFPE on machines where no simple fault
 * raises them), the host exits with 128 + the signal number, as a shell
 * reports a death by that signal.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pid1.h"

static const int fatal[] = { SIGSEGV, SIGILL, SIGFPE, SIGBUS, SIGABRT, SIGTRAP };
/* The launcher's exit report pipe (launcher.h, NK_HOST_REPORT_FD), or -1. */
static int report_fd = -1;

static void fault_with(int sig)
{
        switch (sig) {
        case SIGSEGV:
                *(volatile int *) 0 = 0;
                break;
        case SIGILL:
                __builtin_trap();
        case SIGFPE: {
#if defined(__x86_64__) || defined(__i386__)
                /* x86 traps on integer division by zero; most others do not.
                 * In assembly: the compiler may turn 1 / x into compares. */
                int zero = 0;
                __asm__ volatile("movl $1, %%eax\n\tcltd\n\tidivl %0" : : "r"(zero) : "eax", "edx", "cc");
#endif
                break;
        }
        case SIGTRAP:
#if defined(__x86_64__) || defined(__i386__)
                __asm__ volatile("int3");
#elif defined(__aarch64__)
                __asm__ volatile("brk #0");
#endif
                break;
        default:
                break;
        }
}

void nk_signal_default_unblocked(int sig)
{
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigemptyset(&dfl.sa_mask);
        sigaction(sig, &dfl, NULL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static void on_fatal(int sig)
{
        /* Where the kernel reaps the host by itself, the runtime learns
         * the signal from here. Once: the fault below comes back by the
         * default action, not through this handler. */
        if (report_fd >= 0) {
                int v = sig;
                (void) !write(report_fd, &v, sizeof v);
        }
        nk_signal_default_unblocked(sig);
        fault_with(sig);
        _exit(128 + sig);
}

int nk_pid1_setup(void)
{
        if (getpid() != 1)
                return 0;
        const char *s = getenv("NIFKIT_REPORT_FD");
        if (s && *s) {
                char *end;
                long fd = strtol(s, &end, 10);
                /* Not inherited by anything a NIF executes, and not left in
                 * the environment the NIF sees through enif_getenv. */
                if (!*end && fd > 2 && fd < 1024 && fcntl((int) fd, F_SETFD, FD_CLOEXEC) == 0)
                        report_fd = (int) fd;
                unsetenv("NIFKIT_REPORT_FD");
        }
        struct sigaction sa = {
                .sa_handler = on_fatal,
                /* SA_ONSTACK: a stack overflow arrives with no stack left
                 * where the NIF set up an alternate one. SA_NODEFER is not
                 * set: the handler's own fault must not re-enter it, and
                 * it resets the action before faulting anyway. */
                .sa_flags = SA_ONSTACK,
        };
        sigfillset(&sa.sa_mask);
        for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
                if (sigaction(fatal[i], &sa, NULL) < 0)
                        return -errno;
        return 0;
}
