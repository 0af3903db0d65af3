#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The VM runner's own logic, without booting: console parsing, the scripts it writes,
the results it reports, and the initramfs builder's module order."""

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location('vm_run', os.path.join(HERE, 'vm-run.py'))
vm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vm)


class Quiet:
    """Swallows what the code under test echoes to stdout."""

    def __enter__(self):
        self.saved = sys.stdout
        sys.stdout = io.StringIO()
        return sys.stdout

    def __exit__(self, *exc):
        sys.stdout = self.saved


class Base(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.paths = vm.Paths(self.tmp, HERE)
        os.makedirs(self.paths.results)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def feed(self, text):
        console = vm.Console(self.paths, io.BytesIO())
        with Quiet():
            for line in text.encode().splitlines(keepends=True):
                console.line(line)
        return console

    def result(self, ident):
        with open(os.path.join(self.paths.results, ident + '.log')) as f:
            log = f.read()
        with open(os.path.join(self.paths.results, ident + '.rc')) as f:
            return int(f.read()), log


class ConsoleTest(Base):
    def test_results_and_noise(self):
        c = self.feed('[    1.0] kernel noise\r\n'
                      'NKVM-NOTE root: overlay\r\n'
                      'NKVM-BEGIN root-a\r\n'
                      'line one\r\n'
                      'NKVM-NOTE inside a test is output\r\n'
                      '\r\n'
                      'NKVM-END root-a 0\r\n'
                      'NKVM-BEGIN user-b\r\n'
                      'no newline at the end'
                      '\r\n'
                      'NKVM-END user-b 77\r\n'
                      'NKVM-DONE\r\n')
        self.assertEqual(c.results, {'root-a': 0, 'user-b': 77})
        self.assertEqual(self.result('root-a'), (0, 'line one\nNKVM-NOTE inside a test is output\n'))
        self.assertEqual(self.result('user-b'), (77, 'no newline at the end\n'))
        self.assertEqual(c.notes, ['root: overlay'])
        self.assertTrue(c.done)
        self.assertIsNone(c.current)

    def test_marker_after_output_on_the_same_line(self):
        c = self.feed('NKVM-BEGIN t\nabcNKVM-END t 3\n')
        self.assertEqual(self.result('t'), (3, 'abc\n'))
        self.assertEqual(c.results, {'t': 3})

    def test_end_of_another_test_is_output(self):
        c = self.feed('NKVM-BEGIN t\nNKVM-END other 0\n')
        self.assertEqual(c.current, 't')
        self.assertEqual(c.results, {})

    def test_fatal_and_unfinished(self):
        c = self.feed('NKVM-FATAL cannot mount cgroup2\n')
        self.assertEqual(c.fatal, 'cannot mount cgroup2')
        self.assertFalse(c.done)
        c = self.feed('NKVM-BEGIN t\n[  9.9] Kernel panic\n')
        self.assertEqual(c.current, 't')
        self.assertFalse(os.path.exists(os.path.join(self.paths.results, 't.rc')))


class ReportTest(Base):
    def write(self, ident, rc, log):
        with open(os.path.join(self.paths.results, ident + '.rc'), 'w') as f:
            f.write(f'{rc}\n')
        with open(os.path.join(self.paths.results, ident + '.log'), 'w') as f:
            f.write(log)

    def test_exit_status_and_log(self):
        self.write('root-a', 3, 'it broke\n')
        with Quiet() as out:
            rc = vm.report(self.paths, {'tests': ['root-a'], 'failure': None}, 'root-a')
        self.assertEqual(rc, 3)
        self.assertIn('it broke', out.getvalue())

    def test_not_run(self):
        status = {'tests': ['root-a'], 'failure': 'the guest was killed after 1s'}
        with Quiet() as out:
            rc = vm.report(self.paths, status, 'root-a')
        self.assertEqual(rc, 1)
        self.assertIn('no result: the guest did not run this test', out.getvalue())

    def test_skip_and_unknown(self):
        with Quiet():
            self.assertEqual(vm.report(self.paths, {'skip': 'no qemu'}, 'root-a'), vm.SKIP)
            self.assertEqual(vm.report(self.paths, {'tests': ['root-a']}, 'root-zzz'), vm.SKIP)
            self.assertEqual(vm.report(self.paths, {'tests': [], 'failure': 'no initramfs'}, 'root-a'), 1)


    def test_interrupted_boot_is_not_repeated(self):
        # What boot() leaves while the guest runs: a later result test of the
        # same meson run must report it, not boot again.
        vm.write_status(self.paths, {'fingerprint': None, 'meson_run': vm.meson_run(), 'tests': [],
                                     'failure': 'the boot was stopped before it ended'})
        saved = vm.find_kernel, vm.skip_reason, vm.boot
        try:
            vm.find_kernel = lambda: ('/vmlinuz', '/lib/modules/x', None)
            vm.skip_reason = lambda: None
            vm.boot = lambda *a: self.fail('booted again')
            status = vm.ensure_results(self.paths, {})
        finally:
            vm.find_kernel, vm.skip_reason, vm.boot = saved
        with Quiet() as out:
            self.assertEqual(vm.report(self.paths, status, 'root-a'), 1)
        self.assertIn('stopped before it ended', out.getvalue())


class PlanTest(Base):
    def test_script_keeps_every_byte(self):
        probe = os.path.join(self.tmp, 'probe.sh')
        with open(probe, 'w') as f:
            f.write('#!/bin/sh\nprintf "%s|" "$PWD" "$1" "$2" "$WEIRD"\n')
        os.chmod(probe, 0o755)
        env = {'WEIRD': "it's a \"value\" with $HOME and `x`"}
        script = vm.test_script([probe, 'a b', "c'd"], env, self.tmp)
        out = subprocess.run(['sh', '-c', script], capture_output=True, text=True, check=True).stdout
        self.assertEqual(out, f'{self.tmp}|a b|c\'d|{env["WEIRD"]}|')

    def test_unreachable_directory(self):
        inner = os.path.join(self.tmp, 'closed', 'build')
        os.makedirs(inner)
        os.chmod(os.path.join(self.tmp, 'closed'), 0o700)
        os.chmod(self.tmp, 0o755)
        if os.stat(self.tmp).st_uid == 1000:
            self.skipTest('running as uid 1000')
        self.assertEqual(vm.unreachable_by_others(inner), os.path.join(self.tmp, 'closed'))
        os.chmod(os.path.join(self.tmp, 'closed'), 0o711)
        self.assertIsNone(vm.unreachable_by_others(inner))

    def test_keep_lists_outermost_trees(self):
        self.assertEqual(vm.outermost(['/tmp/src/build', '/tmp/src', '/tmp/srcx', '/tmp/src']),
                         ['/tmp/src', '/tmp/srcx'])
        self.assertEqual(vm.outermost(['/', '/tmp/a']), ['/'])

    def test_kept_checkout_under_closed_tmp_dir(self):
        # A checkout inside `mktemp -d` (0700): the guest recreates the way to it.
        inner = os.path.join(self.tmp, 'closed', 'src')
        os.makedirs(inner)
        os.chmod(os.path.join(self.tmp, 'closed'), 0o700)
        if not vm.covered(inner) or os.stat(self.tmp).st_uid == 1000:
            self.skipTest(f'{inner} is not under a directory the guest covers, or owned by uid 1000')
        self.assertEqual(vm.unreachable_by_others(inner), os.path.join(self.tmp, 'closed'))
        self.assertIsNone(vm.unreachable_by_others(os.path.join(inner), (inner,)))
        os.chmod(inner, 0o700)
        self.assertEqual(vm.unreachable_by_others(inner, (inner,)), inner)

    def test_plan_runs_suites_twice(self):
        info = os.path.join(self.tmp, 'meson-info')
        os.makedirs(info)
        tests = [
            {'name': 'a b', 'suite': ['nifkit:integration'], 'cmd': ['/bin/true'], 'env': {}, 'timeout': 10,
             'workdir': None},
            {'name': 'u', 'suite': ['nifkit:unit'], 'cmd': ['/bin/true'], 'env': {}, 'timeout': 10, 'workdir': None},
            {'name': 'v', 'suite': ['nifkit:vm-only'], 'cmd': ['/bin/true'], 'env': {}, 'timeout': 0, 'workdir': '/'},
            {'name': 'h', 'suite': ['nifkit:hostile'], 'cmd': ['/bin/true'], 'env': {}, 'timeout': 5, 'workdir': None},
        ]
        with open(os.path.join(info, 'intro-tests.json'), 'w') as f:
            json.dump(tests, f)
        plan = vm.build_plan(self.paths, {'NIFKIT': '/x'})
        ids = [p[0] for p in plan]
        for mode in ('root', 'user'):
            self.assertIn(f'{mode}-integration-a_b', ids)
            self.assertIn(f'{mode}-vm-only-v', ids)
            self.assertIn(f'{mode}-hostile-h', ids)
            self.assertNotIn(f'{mode}-integration-u', ids)
        self.assertIn('user-delegated_leaf', ids)
        self.assertNotIn('root-delegated_leaf', ids)
        limits = {p[0]: p[2] for p in plan}
        self.assertEqual(limits['root-integration-a_b'], max(10, int(10 * vm.TIMEOUT_FACTOR)))
        self.assertEqual(limits['root-vm-only-v'], vm.GUEST_TEST_TIMEOUT)
        self.assertEqual(limits['root-hostile-h'], max(10, int(5 * vm.TIMEOUT_FACTOR)))
        # suites in GUEST_SUITES order, all of root's before user's
        self.assertLess(ids.index('root-integration-a_b'), ids.index('root-vm-only-v'))
        self.assertLess(ids.index('root-vm-only-v'), ids.index('root-hostile-h'))
        self.assertLess(ids.index('root-hostile-h'), ids.index('user-cgroup_sanity'))
        vm.write_plan(self.paths, plan)
        with open(os.path.join(self.paths.plan, 'list')) as f:
            self.assertEqual([line.split()[0] for line in f], ids)
        with open(os.path.join(self.paths.plan, 'keep')) as f:
            self.assertEqual(f.read().split('\n')[:-1], vm.kept_dirs(self.paths))
        first = vm.fingerprint(plan, '/nonexistent')
        self.assertEqual(first, vm.fingerprint(plan, '/nonexistent'))
        plan[0] = (plan[0][0], plan[0][1], plan[0][2] + 1, plan[0][3])
        self.assertNotEqual(first, vm.fingerprint(plan, '/nonexistent'))


class InitramfsTest(Base):
    def test_modules_in_dependency_order(self):
        if not shutil.which('cpio') or subprocess.run(['sh', '-c', 'ldd /bin/busybox'],
                                                      capture_output=True).returncode == 0:
            self.skipTest('busybox-static or cpio missing')
        moddir = os.path.join(self.tmp, 'modules')
        os.makedirs(os.path.join(moddir, 'k'))
        deps = {'k/9p.ko': ['k/9pnet.ko', 'k/netfs.ko'], 'k/9pnet.ko': [], 'k/netfs.ko': [],
                'k/9pnet_virtio.ko': ['k/9pnet.ko', 'k/virtio_ring.ko'], 'k/virtio_ring.ko': [],
                'k/virtio_pci.ko': ['k/virtio_ring.ko'], 'k/unrelated.ko': ['k/netfs.ko']}
        with open(os.path.join(moddir, 'modules.dep'), 'w') as f:
            for m, d in deps.items():
                f.write(f'{m}: {" ".join(d)}\n'.replace(': \n', ':\n'))
                with open(os.path.join(moddir, m), 'w') as ko:
                    ko.write(m)
        out = os.path.join(self.tmp, 'i.cpio.gz')
        subprocess.run(['sh', os.path.join(HERE, 'mkinitramfs.sh'), out, moddir, os.path.join(HERE, 'init')],
                       check=True)
        x = os.path.join(self.tmp, 'x')
        os.makedirs(x)
        subprocess.run(f'gzip -dc {out} | cpio -id --quiet', shell=True, cwd=x, check=True)
        with open(os.path.join(x, 'lib', 'modules', 'order')) as f:
            order = f.read().split()
        self.assertEqual(order, ['virtio_ring.ko', 'virtio_pci.ko', '9pnet.ko', '9pnet_virtio.ko',
                                 'netfs.ko', '9p.ko'])
        self.assertTrue(os.path.islink(os.path.join(x, 'bin', 'mount')))
        self.assertTrue(os.access(os.path.join(x, 'init'), os.X_OK))


if __name__ == '__main__':
    unittest.main(verbosity=2)
