#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Symbol coverage of nifkit-host.

Unmodified NIF libraries resolve enif_* against the process that loads them,
so the host must define every function a NIF may call:
  (a) every ERL_NIF_API_FUNC_DECL of the installed erl_nif_api_funcs.h,
  (b) every enif_* the installed beam.smp exports,
  (c) the NIF API 2.17 additions (OTP 26/27).
  (d) the part of erl_driver.h that works outside a port (DRIVER), which
      beam.smp exports to NIFs too and older NIFs call.
It must also export nothing else (exports.list): a NIF must not bind to the
host's internals by accident. The one exception is the capability broker's
set (BROKER): the libc entry points nifkit-host interposes so that a NIF's
files and sockets go through the broker, and the broker's explicit API.

With --host, the built executable's dynamic symbols are checked. Before the
executable exists (--lib), the static library's objects are checked for
definitions instead; the export check then has nothing to look at and says so.
"""
import argparse
import fnmatch
import glob
import os
import re
import subprocess
import sys

API_2_17 = [
    "enif_get_string_length",
    "enif_make_new_atom",
    "enif_make_new_atom_len",
    "enif_set_option",
]

# hosts/interpose.c: exactly these, besides enif_*, may be exported.
BROKER = {
    "open", "open64", "openat", "openat64", "__open_2", "__open64_2", "__openat_2", "__openat64_2",
    "creat", "creat64", "fopen", "fopen64", "freopen", "freopen64",
    "stat", "stat64", "lstat", "lstat64", "fstatat", "fstatat64", "access", "getcwd", "unlink", "unlinkat",
    "remove",
    "socket", "connect", "bind", "listen", "getaddrinfo", "freeaddrinfo",
    "nifkit_open", "nifkit_connect", "nifkit_listen",
}

# hosts/driver_api.c: the driver API a NIF may call outside a port. Each
# must be one beam.smp exports.
DRIVER = {
    "erl_errno_id", "driver_system_info",
    "driver_alloc", "driver_realloc", "driver_free",
    "driver_alloc_binary", "driver_realloc_binary", "driver_free_binary",
    "driver_binary_get_refc", "driver_binary_inc_refc", "driver_binary_dec_refc",
    "erl_drv_mutex_create", "erl_drv_mutex_destroy", "erl_drv_mutex_trylock", "erl_drv_mutex_lock",
    "erl_drv_mutex_unlock", "erl_drv_mutex_name",
    "erl_drv_cond_create", "erl_drv_cond_destroy", "erl_drv_cond_signal", "erl_drv_cond_broadcast",
    "erl_drv_cond_wait", "erl_drv_cond_name",
    "erl_drv_rwlock_create", "erl_drv_rwlock_destroy", "erl_drv_rwlock_tryrlock", "erl_drv_rwlock_rlock",
    "erl_drv_rwlock_runlock", "erl_drv_rwlock_tryrwlock", "erl_drv_rwlock_rwlock", "erl_drv_rwlock_rwunlock",
    "erl_drv_rwlock_name",
    "erl_drv_tsd_key_create", "erl_drv_tsd_key_destroy", "erl_drv_tsd_set", "erl_drv_tsd_get",
    "erl_drv_thread_opts_create", "erl_drv_thread_opts_destroy", "erl_drv_thread_create",
    "erl_drv_thread_self", "erl_drv_equal_tids", "erl_drv_thread_exit", "erl_drv_thread_join",
    "erl_drv_thread_name",
    "erl_drv_monotonic_time", "erl_drv_time_offset", "erl_drv_convert_time_unit",
    "erl_drv_getenv", "erl_drv_putenv",
    "driver_dl_open", "driver_dl_sym", "driver_dl_close", "driver_dl_error",
}
DRIVER_PATTERNS = {"erl_errno_id", "erl_drv_*", "driver_*"}

# Symbols the toolchain puts in an executable's dynamic table whatever the
# export list says (glibc's crt objects and the linker's section markers).
TOOLCHAIN = {"_IO_stdin_used", "_edata", "_end", "__bss_start", "__data_start",
             "data_start", "_init", "_fini", "__dso_handle", "_start"}
# What a sanitizer build's instrumentation adds to the dynamic table by
# itself (e.g. __asan_option_detect_stack_use_after_return): not our code.
SANITIZER_PREFIXES = ("__asan_", "__ubsan_", "__lsan_", "__sanitizer_")


def nm(args, path):
    out = subprocess.run(["nm"] + args + [path], check=True, capture_output=True, text=True)
    return out.stdout.splitlines()


def header_names(erl_root, cc):
    """The functions erl_nif.h declares on this platform.

    The header is preprocessed rather than read: some declarations only
    exist where long is not 64 bits (enif_get_int64 and friends are macros
    over the long functions elsewhere, and BEAM does not export them)."""
    inc = os.path.join(erl_root, "usr", "include")
    path = os.path.join(inc, "erl_nif_api_funcs.h")
    out = subprocess.run([cc, "-E", "-P", "-I", inc, "-x", "c", "-"], input="#include <erl_nif.h>\n",
                         check=True, capture_output=True, text=True).stdout
    names = set(re.findall(r"\bextern\b[^;{}]*?\b(enif_\w+)\s*\(", out))
    if len(names) < 100:
        sys.exit(f"symbols: only {len(names)} declarations found in {path}")
    return names, path


def beam_names(erl_root):
    """The enif_* beam.smp exports, and all it exports."""
    beams = sorted(glob.glob(os.path.join(erl_root, "erts-*", "bin", "beam.smp")))
    if not beams:
        sys.exit(f"symbols: no erts-*/bin/beam.smp under {erl_root}")
    every = set()
    for line in nm(["-D", "--defined-only"], beams[-1]):
        parts = line.split()
        if len(parts) == 3:
            every.add(parts[2])
    names = {n for n in every if n.startswith("enif_")}
    if len(names) < 100:
        sys.exit(f"symbols: only {len(names)} enif_* exported by {beams[-1]}")
    return names, every, beams[-1]


def export_patterns(exports_list):
    with open(exports_list, encoding="utf-8") as f:
        text = re.sub(r"/\*.*?\*/", "", f.read(), flags=re.S)
    return [p.strip() for p in re.findall(r"([^{};\s][^;{}]*);", text) if p.strip()]


def defined_in_host(host):
    syms = set()
    for line in nm(["-D", "--defined-only"], host):
        parts = line.split()
        # name@VERSION: a shared library's data copied into the executable
        # (stdout, stderr), defined here only for the copy relocation.
        if len(parts) == 3 and "@" not in parts[2]:
            syms.add(parts[2])
    return syms


def defined_in_lib(lib):
    syms = set()
    for line in nm(["--defined-only", "-g"], lib):
        parts = line.split()
        # global text (T) or data; archive member headers have no type
        if len(parts) == 3 and parts[1] in "TDBRVW":
            syms.add(parts[2])
    return syms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--erl-root", required=True)
    ap.add_argument("--exports", required=True)
    ap.add_argument("--cc", default="cc")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--host")
    g.add_argument("--lib")
    a = ap.parse_args()

    hdr, hdr_path = header_names(a.erl_root, a.cc)
    beam, beam_all, beam_path = beam_names(a.erl_root)
    required = {
        "erl_nif_api_funcs.h": hdr,
        "beam.smp": beam,
        "NIF API 2.17": set(API_2_17),
        "driver API outside ports": DRIVER,
    }
    target = a.host or a.lib
    defined = defined_in_host(a.host) if a.host else defined_in_lib(a.lib)

    failed = False
    for name in sorted(DRIVER - beam_all):
        print(f"  NOT EXPORTED BY beam.smp: {name}: the host must not offer what BEAM does not")
        failed = True
    for source, names in required.items():
        missing = sorted(names - defined)
        print(f"{source}: {len(names)} functions, {len(names) - len(missing)} defined in {os.path.basename(target)}")
        for name in missing:
            print(f"  MISSING ({source}): {name}")
            failed = True

    if a.host:
        patterns = export_patterns(a.exports)
        extra = sorted(s for s in defined
                       if s not in TOOLCHAIN and not s.startswith(SANITIZER_PREFIXES)
                       and not any(fnmatch.fnmatchcase(s, p) for p in patterns))
        print(f"exports: {len(defined)} dynamic symbols, patterns {patterns}")
        for p in patterns:
            if p != "enif_*" and p not in BROKER and p not in DRIVER_PATTERNS:
                print(f"  exports.list allows {p}: neither enif_*, the driver API's nor the broker's")
                failed = True
        for s in sorted(defined):
            if any(fnmatch.fnmatchcase(s, p) for p in DRIVER_PATTERNS) and s not in DRIVER:
                print(f"  EXPORTED AS DRIVER API, BUT NOT IN DRIVER: {s}")
                failed = True
        for s in sorted(BROKER - defined):
            print(f"  MISSING (broker): {s}")
            failed = True
        for s in extra:
            print(f"  NOT IN exports.list: {s}")
            failed = True
    else:
        print("exports: checked only on the nifkit-host executable, which is not built yet")

    print(f"(header {hdr_path}, VM {beam_path})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
