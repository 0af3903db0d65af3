#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Runs nifkit's tests inside a qemu guest with a real kernel and every cgroup v2 controller.

One boot runs every test of the plan, as root and as uid 1000; the guest prints
NKVM-BEGIN/NKVM-END lines on its serial console and this script turns them into one
result per test (results/<id>.rc and .log in the build directory), which the per-test
meson tests of suite 'vm' then report.

  vm-run.py boot   COMMON...            boot once, write every result (the 'vm-boot' test)
  vm-run.py result COMMON... ID         report one result; boots first if the results
                                        on disk do not belong to the current build
  vm-run.py rest   COMMON... MODE SUITE ID...
                                        report the results of MODE's tests of SUITE
                                        that have no meson test of their own

COMMON: --builddir DIR --srcdir DIR [--guest-env NAME=VALUE]...

Exit statuses follow meson's: 0 pass, 77 skipped (qemu, the kernel or busybox-static
missing, with the reason), anything else fails.
"""

import argparse
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time

SKIP = 77
# Suites whose tests run in the guest besides tests/vm/guest-tests, in this order:
# the sandbox's limits and escape attempts are only fully proven under a kernel
# with every cgroup controller.
GUEST_SUITES = tuple(os.environ.get('NKVM_SUITES', 'integration,vm-only,broker,hostile').split(','))
# TCG runs code several times slower than the machine: stretch meson's limits.
TIMEOUT_FACTOR = float(os.environ.get('NKVM_TIMEOUT_FACTOR', '3'))
# A whole run takes about 9 minutes on a loaded 2-core machine: twice that is
# still a guest at work, more is a hung one. Below vm-boot's meson time-out,
# so that the runner, not meson, stops it and records what ran.
BOOT_TIMEOUT = int(os.environ.get('NKVM_BOOT_TIMEOUT', '1500'))
GUEST_TEST_TIMEOUT = 300
GUEST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
# guest test -> the modes it runs in
GUEST_TESTS = {
    'cgroup_sanity': ('root', 'user'),
    'nifkit_call': ('root', 'user'),
    'delegated_leaf': ('user',),
    'doctor_userns': ('root',),
    'cgroup_undelegated': ('root',),
}
NO_RESULT = 'no result: the guest did not run this test (see {})'


class Paths:
    def __init__(self, builddir, srcdir):
        self.builddir = os.path.abspath(builddir)
        self.srcdir = os.path.abspath(srcdir)
        self.vmdir = os.path.join(self.builddir, 'tests', 'vm')
        self.plan = os.path.join(self.vmdir, 'plan')
        self.results = os.path.join(self.vmdir, 'results')
        self.status = os.path.join(self.results, 'boot.json')
        self.lock = os.path.join(self.vmdir, 'boot.lock')
        self.initramfs = os.path.join(self.vmdir, 'initramfs.cpio.gz')
        self.console = os.path.join(self.builddir, 'meson-logs', 'vm-console.log')


def find_kernel():
    """The newest Debian kernel in /boot that has its modules: (vmlinuz, modules dir) or a skip reason."""
    override = os.environ.get('NKVM_KERNEL')
    if override:
        version = os.environ.get('NKVM_KERNEL_VERSION', os.path.basename(override).replace('vmlinuz-', '', 1))
        candidates = [(override, version)]
    else:
        names = [n for n in os.listdir('/boot') if n.startswith('vmlinuz-')] if os.path.isdir('/boot') else []
        candidates = [(os.path.join('/boot', n), n[len('vmlinuz-'):]) for n in names]

        def version_key(c):
            return [int(x) if x.isdigit() else x for x in re.split(r'[.-]', c[1])]
        candidates.sort(key=version_key, reverse=True)
    if not candidates:
        return None, None, 'no kernel in /boot (install linux-image-amd64)'
    for kernel, version in candidates:
        moddir = os.path.join('/lib/modules', version)
        if not os.path.isfile(os.path.join(moddir, 'modules.dep')):
            continue
        if not os.access(kernel, os.R_OK):
            return None, None, f'{kernel} is not readable by uid {os.getuid()} (Debian installs it 0600: run as root)'
        return kernel, moddir, None
    return None, None, 'no kernel in /boot has its modules in /lib/modules'


def load_meson_tests(paths):
    with open(os.path.join(paths.builddir, 'meson-info', 'intro-tests.json')) as f:
        return json.load(f)


def suite_names(test):
    return {s.split(':', 1)[-1] for s in test['suite']}


def safe_id(name):
    return re.sub(r'[^A-Za-z0-9_.-]', '_', name)


def test_script(cmd, env, workdir):
    """A POSIX sh script that gives the test its environment and working directory, then execs it."""
    lines = ['#!/bin/sh', '# written by tests/vm/vm-run.py: one test of the VM plan',
             f'export PATH={shlex.quote(GUEST_PATH)}']
    for name, value in sorted(env.items()):
        lines.append(f'export {name}={shlex.quote(value)}')
    lines.append(f'cd {shlex.quote(workdir)} || exit 1')
    lines.append('exec ' + ' '.join(shlex.quote(c) for c in cmd))
    return '\n'.join(lines) + '\n'


def guest_suite(test):
    """The first of GUEST_SUITES the meson test belongs to, or None."""
    names = suite_names(test)
    return next((s for s in GUEST_SUITES if s in names), None)


def guest_meson_tests(paths):
    """The meson tests the guest runs, grouped by suite in GUEST_SUITES order."""
    tests = [t for t in load_meson_tests(paths) if guest_suite(t)]
    return sorted(tests, key=lambda t: GUEST_SUITES.index(guest_suite(t)))


def build_prerequisites(paths):
    """Builds what the guest's tests need. `meson test --suite vm` only builds
    the vm tests' own dependencies, not those of the tests the guest runs."""
    with open(os.path.join(paths.builddir, 'meson-info', 'intro-targets.json')) as f:
        outputs = {t['id']: t['filename'] for t in json.load(f)}
    wanted = set()
    for t in guest_meson_tests(paths):
        for dep in t.get('depends') or []:
            wanted.update(os.path.relpath(f, paths.builddir) for f in outputs.get(dep, []))
    if not wanted:
        return None
    ninja = shutil.which('ninja') or shutil.which('ninja-build') or 'ninja'
    r = subprocess.run([ninja, '-C', paths.builddir] + sorted(wanted),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.stdout.write(r.stdout)
        return f'ninja could not build every test the guest runs (status {r.returncode}): their results will say so'
    return None


# Where the guest mounts a fresh tmpfs (tests/vm/init's covered()).
GUEST_TMPFS = ('/tmp', '/var/tmp', '/run', '/dev')


def covered(path):
    return any(path == d or path.startswith(d + '/') for d in GUEST_TMPFS)


def unreachable_by_others(path, kept=()):
    """The first directory on the way to PATH that uid 1000 could not enter, or None.

    The guest sees the machine's permissions as they are: a build under /root (0700)
    is out of reach of the unprivileged run. Above a directory of KEPT under a
    covered one (a checkout in `mktemp -d`), the guest makes its own way, 0755."""
    path = os.path.abspath(path)
    while True:
        st = os.stat(path)
        if st.st_uid != 1000 and not st.st_mode & 0o001:
            return path
        if path in kept and covered(path):
            return None
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def skip_script(reason):
    return f'#!/bin/sh\necho {shlex.quote("SKIP: " + reason)}\nexit {SKIP}\n'


def build_plan(paths, guest_env):
    """[(id, mode, timeout, script text)] for every test the guest runs, in order."""
    plan = []
    kept = kept_dirs(paths)
    blocked = unreachable_by_others(paths.builddir, kept) or unreachable_by_others(paths.srcdir, kept)
    user_skip = skip_script(f'uid 1000 cannot enter {blocked}: build outside it to run the unprivileged tests') \
        if blocked else None
    guest_dir = os.path.join(paths.srcdir, 'tests', 'vm', 'guest-tests')
    for mode in ('root', 'user'):
        for name, modes in GUEST_TESTS.items():
            if mode in modes:
                script = test_script([os.path.join(guest_dir, name + '.sh')], guest_env, paths.builddir)
                if mode == 'user' and user_skip:
                    script = user_skip
                plan.append((f'{mode}-{name}', mode, GUEST_TEST_TIMEOUT, script))
        for t in guest_meson_tests(paths):
            limit = t.get('timeout') or 0
            limit = max(10, int(limit * TIMEOUT_FACTOR)) if limit > 0 else GUEST_TEST_TIMEOUT
            env = dict(t.get('env') or {})
            script = test_script(t['cmd'], env, t.get('workdir') or paths.builddir)
            if mode == 'user' and user_skip:
                script = user_skip
            plan.append((f'{mode}-{guest_suite(t)}-{safe_id(t["name"])}', mode, limit, script))
    return plan


def fingerprint(plan, kernel):
    """Identifies a plan and what it runs: the scripts, and every file they name (path, size, mtime)."""
    h = hashlib.sha256()
    files = {os.path.abspath(__file__), kernel}
    for ident, mode, limit, script in plan:
        h.update(f'{ident} {mode} {limit}\n{script}'.encode())
        for token in re.findall(r"/[^\s'\"]+", script):
            files.add(token)
    for name in ('init', 'mkinitramfs.sh'):
        files.add(os.path.join(os.path.dirname(os.path.abspath(__file__)), name))
    for f in sorted(files):
        try:
            st = os.stat(f)
        except OSError:
            continue
        if os.path.isfile(f):
            h.update(f'{f} {st.st_size} {st.st_mtime_ns}\n'.encode())
    return h.hexdigest()


def outermost(dirs):
    """dirs without those inside another of them, in order."""
    out = []
    for d in sorted(set(dirs)):
        if not any(d == o or d.startswith(o.rstrip('/') + '/') for o in out):
            out.append(d)
    return out


def kept_dirs(paths):
    return outermost([paths.srcdir, paths.builddir])


def write_plan(paths, plan):
    shutil.rmtree(paths.plan, ignore_errors=True)
    os.makedirs(paths.plan)
    with open(os.path.join(paths.plan, 'list'), 'w') as lst:
        for ident, mode, limit, script in plan:
            with open(os.path.join(paths.plan, ident + '.sh'), 'w') as f:
                f.write(script)
            lst.write(f'{ident} {mode} {limit}\n')
    with open(os.path.join(paths.plan, 'user-writable'), 'w') as f:
        f.write(paths.builddir + '\n')
    # The trees the guest must see even where it mounts a fresh tmpfs (/tmp…),
    # outermost only: the guest puts each back over that tmpfs.
    with open(os.path.join(paths.plan, 'keep'), 'w') as f:
        f.write(''.join(d + '\n' for d in kept_dirs(paths)))


def meson_run():
    """Identifies the `meson test` run this process belongs to (its parent: pid and start
    time), so that the per-test results come from this run's boot even if a source file
    changed meanwhile."""
    ppid = os.getppid()
    try:
        with open(f'/proc/{ppid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return f'{ppid}:{fields[19]}'
    except (OSError, IndexError):
        return None


def write_status(paths, status):
    tmp = paths.status + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(status, f, indent=1)
    os.replace(tmp, paths.status)


def read_status(paths):
    try:
        with open(paths.status) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class Console:
    """Reads the guest's serial console line by line: keeps it, echoes it, and splits it into results."""

    BEGIN = re.compile(r'NKVM-BEGIN (\S+)')
    END = re.compile(r'NKVM-END (\S+) (-?\d+)')

    def __init__(self, paths, log):
        self.paths = paths
        self.log = log
        self.current = None
        self.output = []
        self.results = {}
        self.done = False
        self.fatal = None
        self.notes = []
        self.start = time.monotonic()
        self.booted_after = None
        self.durations = {}

    def line(self, raw):
        self.log.write(raw)
        self.log.flush()
        text = raw.decode('utf-8', 'replace').rstrip('\r\n').replace('\r', '')
        sys.stdout.write(text + '\n')
        end = self.END.search(text)
        if end and self.current == end.group(1):
            prefix = text[:end.start()]
            if prefix:
                self.output.append(prefix)
            # the guest prints a newline before NKVM-END in case the output lacked one
            if self.output and self.output[-1] == '':
                self.output.pop()
            self.finish(int(end.group(2)))
            return
        if self.current is not None:
            self.output.append(text)
            return
        begin = self.BEGIN.match(text)
        if begin:
            self.current = begin.group(1)
            self.output = []
            self.began = time.monotonic()
            if self.booted_after is None:
                self.booted_after = self.began - self.start
        elif text.startswith('NKVM-DONE'):
            self.done = True
        elif text.startswith('NKVM-FATAL'):
            self.fatal = text[len('NKVM-FATAL '):]
        elif text.startswith('NKVM-NOTE'):
            self.notes.append(text[len('NKVM-NOTE '):])

    def finish(self, rc):
        ident = self.current
        with open(os.path.join(self.paths.results, ident + '.log'), 'w') as f:
            f.write('\n'.join(self.output) + ('\n' if self.output else ''))
        with open(os.path.join(self.paths.results, ident + '.rc'), 'w') as f:
            f.write(f'{rc}\n')
        self.results[ident] = rc
        self.durations[ident] = time.monotonic() - self.began
        self.current = None
        self.output = []


def qemu_command(paths, kernel):
    cmdline = f'console=ttyS0 panic=-1 cgroup_no_v1=all quiet nkvm.plan={paths.plan}'
    return ['qemu-system-x86_64', '-accel', 'tcg', '-cpu', 'max', '-m', '2048', '-smp', '2',
            '-nodefaults', '-no-reboot', '-display', 'none', '-monitor', 'none',
            '-serial', 'stdio',
            '-kernel', kernel, '-initrd', paths.initramfs, '-append', cmdline,
            # KVM guests hang on these machines, and TCG is exact enough.
            '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap']


def run_qemu(paths, kernel):
    """Boots the guest; returns (Console, outcome text or None when the plan ran to its end)."""
    os.makedirs(os.path.dirname(paths.console), exist_ok=True)
    with open(paths.console, 'wb') as log:
        console = Console(paths, log)
        cmd = qemu_command(paths, kernel)
        log.write(('# ' + ' '.join(shlex.quote(c) for c in cmd) + '\n').encode())
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        timed_out = threading.Event()

        def watchdog():
            timed_out.set()
            proc.kill()
        timer = threading.Timer(BOOT_TIMEOUT, watchdog)
        timer.start()
        try:
            for raw in iter(proc.stdout.readline, b''):
                console.line(raw)
        finally:
            timer.cancel()
            proc.wait()
        elapsed = time.monotonic() - start
        summary = f'# qemu exited with status {proc.returncode} after {elapsed:.0f}s\n'
        log.write(summary.encode())
        sys.stdout.write(summary)
    if timed_out.is_set():
        return console, f'the guest was killed after {BOOT_TIMEOUT}s (NKVM_BOOT_TIMEOUT)'
    if console.fatal:
        return console, f'the guest could not run the plan: {console.fatal}'
    if console.current:
        return console, f'the guest stopped inside test {console.current} (panic or power loss)'
    if not console.done:
        return console, f'the guest stopped before the end of its plan (qemu status {proc.returncode})'
    return console, None


def skip_reason():
    if shutil.which('qemu-system-x86_64') is None:
        return 'qemu-system-x86_64 is not installed (qemu-system-x86)'
    return None


def lock_boot(paths):
    """One boot at a time per build directory; the lock goes with the returned file."""
    os.makedirs(paths.vmdir, exist_ok=True)
    lock = open(paths.lock, 'w')
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def boot(paths, guest_env):
    """Boots once and records every result. Returns meson's exit status for the 'vm-boot' test.

    The caller holds lock_boot()."""
    shutil.rmtree(paths.results, ignore_errors=True)
    os.makedirs(paths.results)
    kernel, moddir, reason = find_kernel()
    reason = skip_reason() or reason
    if reason:
        write_status(paths, {'skip': reason})
        print(f'SKIP: {reason}')
        return SKIP
    problem = build_prerequisites(paths)
    if problem:
        print(f'NOTE: {problem}')
    plan = build_plan(paths, guest_env)
    fp = fingerprint(plan, kernel)
    write_plan(paths, plan)
    here = os.path.dirname(os.path.abspath(__file__))
    mk = subprocess.run(['sh', os.path.join(here, 'mkinitramfs.sh'), paths.initramfs, moddir,
                         os.path.join(here, 'init')], stderr=subprocess.PIPE, text=True)
    if mk.returncode != 0:
        msg = mk.stderr.strip().replace('SKIP: ', '') or f'mkinitramfs.sh failed ({mk.returncode})'
        if mk.returncode == SKIP:
            write_status(paths, {'skip': msg})
            print(f'SKIP: {msg}')
            return SKIP
        write_status(paths, {'fingerprint': fp, 'failure': msg})
        print(f'FAIL: {msg}')
        return 1
    print(f'kernel {kernel}, {len(plan)} tests, console log {paths.console}')
    # Should this process be killed before the guest ends (meson's own
    # time-out), the result tests of the same run still find a status, and
    # fail saying so instead of each booting again.
    write_status(paths, {'fingerprint': None, 'meson_run': meson_run(), 'tests': [],
                         'failure': f'the boot was stopped before it ended; console log: {paths.console}'})
    console, failure = run_qemu(paths, kernel)
    write_status(paths, {'fingerprint': fp, 'meson_run': meson_run(), 'failure': failure, 'kernel': kernel,
                         'tests': [p[0] for p in plan], 'results': console.results,
                         'notes': console.notes, 'durations': console.durations,
                         'boot_seconds': console.booted_after})
    print()
    for ident, *_ in plan:
        rc = console.results.get(ident)
        word = 'not run' if rc is None else 'ok' if rc == 0 else 'skip' if rc == SKIP else f'FAIL ({rc})'
        took = f'{console.durations[ident]:6.1f}s' if ident in console.durations else ''
        print(f'{ident:50} {word:10} {took}')
    if console.booted_after is not None:
        print(f'boot to the first test: {console.booted_after:.1f}s')
    if failure:
        print(f'FAIL: {failure}; console log: {paths.console}')
        return 1
    return 0


def ensure_results(paths, guest_env):
    """The status of a boot that ran the current plan, booting now if the one on disk is older.

    The caller holds lock_boot(), so a boot in progress is waited for."""
    status = read_status(paths)
    kernel, _, reason = find_kernel()
    reason = skip_reason() or reason
    if reason:
        return {'skip': reason}
    if status and status.get('meson_run') and status.get('meson_run') == meson_run():
        return status
    current = fingerprint(build_plan(paths, guest_env), kernel)
    if status and status.get('fingerprint') == current:
        return status
    boot(paths, guest_env)
    return read_status(paths) or {'failure': 'the boot left no status'}


def report(paths, status, ident):
    """Prints one test's output and returns its exit status."""
    if 'skip' in status:
        print(f'SKIP: {status["skip"]}')
        return SKIP
    if ident not in status.get('tests', []):
        if status.get('failure') and not status.get('tests'):
            print(NO_RESULT.format(paths.console) + f': {status["failure"]}')
            return 1
        print(f'SKIP: {ident} is not in this build\'s plan (no such test in suites {", ".join(GUEST_SUITES)})')
        return SKIP
    try:
        with open(os.path.join(paths.results, ident + '.rc')) as f:
            rc = int(f.read().strip())
        with open(os.path.join(paths.results, ident + '.log')) as f:
            log = f.read()
    except (OSError, ValueError):
        reason = status.get('failure') or 'its result is missing'
        print(NO_RESULT.format(paths.console) + f': {reason}')
        return 1
    sys.stdout.write(log)
    print(f'guest exit status: {rc}')
    return rc


def parse_env(pairs):
    env = {}
    for p in pairs or []:
        name, sep, value = p.partition('=')
        if not sep:
            raise SystemExit(f'--guest-env {p!r}: want NAME=VALUE')
        env[name] = value
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('command', choices=('boot', 'result', 'rest'))
    ap.add_argument('--builddir', required=True)
    ap.add_argument('--srcdir', required=True)
    ap.add_argument('--guest-env', action='append')
    ap.add_argument('args', nargs='*')
    a = ap.parse_intermixed_args()
    paths = Paths(a.builddir, a.srcdir)
    guest_env = parse_env(a.guest_env)
    sys.stdout.reconfigure(line_buffering=True)
    with lock_boot(paths):
        if a.command == 'boot':
            return boot(paths, guest_env)
        status = ensure_results(paths, guest_env)
    if a.command == 'result':
        if len(a.args) != 1:
            ap.error('result takes one test id')
        return report(paths, status, a.args[0])
    # rest MODE SUITE ID...: the tests of SUITE without a meson test of their own
    if len(a.args) < 2:
        ap.error('rest takes a mode, a suite and the ids that have their own meson test')
    mode, suite, listed = a.args[0], a.args[1], set(a.args[2:])
    if 'skip' in status:
        return report(paths, status, '')
    if status.get('failure') and not status.get('tests'):
        return report(paths, status, '')
    prefix = f'{mode}-{suite}-'
    rest = [t for t in status.get('tests', []) if t.startswith(prefix) and t not in listed]
    if not rest:
        print(f'SKIP: no {mode} test of suite {suite} is left without a meson test of its own')
        return SKIP
    worst = 0
    summary = []
    for ident in rest:
        print(f'==== {ident}')
        rc = report(paths, status, ident)
        summary.append(f'{ident:50} {"ok" if rc == 0 else "skip" if rc == SKIP else f"FAIL ({rc})"}')
        if rc not in (0, SKIP):
            worst = rc
    print('\n'.join(['==== summary'] + summary))
    return worst

if __name__ == '__main__':
    sys.exit(main())
