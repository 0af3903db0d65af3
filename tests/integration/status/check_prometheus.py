#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""nifkit status --format prometheus, read as Prometheus reads it.

  check_prometheus.py NIFKIT
      writes state files with known numbers (and a library path that needs
      escaping), runs NIFKIT status --format prometheus, and checks every
      family, type, label and value with prometheus_client's parser of the
      text format, plus the format's own rules the parser lets pass.
  check_prometheus.py --live FILE LIBRARY_PART MIN_CALLS
      checks a scrape taken while a real VM ran a wrapped library.

Runs with Debian's python3 (python3-prometheus-client), hence the path.
TAP output.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print('1..0 # SKIP python3-prometheus-client is not installed (scripts/install-deps.sh)')
    sys.exit(0)

FAMILIES = {
    'nifkit_calls': 'counter',
    'nifkit_call_errors': 'counter',
    'nifkit_call_duration_seconds': 'histogram',
    'nifkit_host_restarts': 'counter',
    'nifkit_host_up': 'gauge',
    'nifkit_host_start_time_seconds': 'gauge',
    'nifkit_host_memory_peak_bytes': 'gauge',
    'nifkit_status_updated_time_seconds': 'gauge',
}

results = []


def check(name, cond, detail=''):
    results.append((name, bool(cond), detail))


def finish():
    for i, (name, good, detail) in enumerate(results, 1):
        print(('ok' if good else 'not ok'), i, '-', name)
        if not good and detail:
            for line in str(detail).splitlines():
                print('#', line)
    print('1..%d' % len(results))
    sys.exit(0 if all(g for _, g, _ in results) else 1)


def strict_rules(text):
    """What the exposition format demands that a lenient parser forgives:
    HELP and TYPE once per family, before its samples; no series twice;
    histogram buckets cumulative, ending with +Inf equal to _count."""
    problems = []
    helped, typed, seen = set(), {}, set()
    buckets = {}
    counts = {}
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith('# HELP '):
            name = line.split()[2]
            if name in helped:
                problems.append('line %d: HELP for %s twice' % (n, name))
            helped.add(name)
            continue
        if line.startswith('# TYPE '):
            _, _, name, typ = line.split(' ', 3)
            if name in typed:
                problems.append('line %d: TYPE for %s twice' % (n, name))
            typed[name] = typ
            continue
        if not line or line.startswith('#'):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$', line)
        if not m:
            problems.append('line %d: not a sample: %r' % (n, line))
            continue
        name, labels, value = m.group(1), m.group(2) or '', m.group(3)
        base = re.sub(r'_(bucket|sum|count)$', '', name) if re.sub(r'_(bucket|sum|count)$', '', name) in typed else name
        if base not in typed or base not in helped:
            problems.append('line %d: %s before its HELP and TYPE' % (n, name))
        if (name, labels) in seen:
            problems.append('line %d: series %s%s twice' % (n, name, labels))
        seen.add((name, labels))
        if name.endswith('_bucket'):
            series = re.sub(r',?le="[^"]*"', '', labels)
            prev = buckets.get(series)
            v = float(value)
            if prev is not None and v < prev:
                problems.append('line %d: bucket below the one before' % n)
            buckets[series] = v
            if 'le="+Inf"' in labels:
                counts[series] = v
        if name.endswith('_count') and base in typed and typed[base] == 'histogram':
            if counts.get(labels) != float(value):
                problems.append('line %d: _count %s is not the +Inf bucket %s' % (n, value, counts.get(labels)))
    return problems


def scrape(nifkit, status_dir, *extra):
    env = dict(os.environ, NIFKIT_STATUS_DIR=status_dir)
    return subprocess.run([nifkit, 'status'] + list(extra), env=env, capture_output=True, text=True)


def synthetic(nifkit):
    d = tempfile.mkdtemp(prefix='nk-prom-')
    pid = os.getpid()
    lib = '/srv/tenant "a"\\b\nc/libx.so'
    hist = [0] * 32
    hist[1], hist[7], hist[12], hist[31] = 1, 4, 2, 1
    recs = [
        {'runtime_pid': pid, 'host_pid': 42, 'library': lib, 'started': 1700000000, 'updated': 1700000100,
         'calls': 8, 'errors_total': 3, 'errors': {'crashed': 1, 'timeout': 2}, 'restarts': 2,
         'last_reason': 'timeout', 'p50_us': 128, 'p99_us': 4096, 'memory_peak': 1048576,
         'latency_us_log2': hist, 'latency_sum_ns': 2_000_012_345_678},
        {'runtime_pid': pid, 'host_pid': -1, 'library': '/srv/idle.so', 'started': 0, 'updated': 0,
         'calls': 0, 'errors_total': 0, 'errors': {}, 'restarts': 0, 'last_reason': '', 'p50_us': 0,
         'p99_us': 0, 'memory_peak': 0, 'latency_us_log2': []},
    ]
    for i, r in enumerate(recs):
        with open(os.path.join(d, '%d-%d.json' % (pid, i)), 'w') as f:
            json.dump(r, f)

    p = scrape(nifkit, d, '--format', 'prometheus')
    check('status --format prometheus exits 0', p.returncode == 0, p.stderr)
    text = p.stdout
    try:
        fams = {f.name: f for f in text_string_to_metric_families(text)}
    except Exception as e:   # the parser's own refusal is the failure
        check('prometheus_client parses the output', False, '%r\n%s' % (e, text))
        return
    check('prometheus_client parses the output', True)
    for name, typ in FAMILIES.items():
        check('family %s is a %s' % (name, typ), name in fams and fams[name].type == typ,
              fams.get(name) and fams[name].type)
    problems = strict_rules(text)
    check('HELP and TYPE lead every family; no series twice; buckets cumulative', not problems,
          '\n'.join(problems))

    def value(fam, sample, **labels):
        for s in fams[fam].samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
        return None

    check('calls_total of the busy library, its path unescaped intact',
          value('nifkit_calls', 'nifkit_calls_total', library=lib, runtime_pid=str(pid)) == 8)
    check('calls_total of the idle one is 0', value('nifkit_calls', 'nifkit_calls_total', library='/srv/idle.so') == 0)
    check('errors by reason: crashed 1',
          value('nifkit_call_errors', 'nifkit_call_errors_total', library=lib, reason='crashed') == 1)
    check('errors by reason: timeout 2',
          value('nifkit_call_errors', 'nifkit_call_errors_total', library=lib, reason='timeout') == 2)
    check('no error series for the idle library',
          value('nifkit_call_errors', 'nifkit_call_errors_total', library='/srv/idle.so') is None)
    h = 'nifkit_call_duration_seconds'
    check('bucket le=0.000002 holds the call under 2 µs',
          value(h, h + '_bucket', library=lib, le='0.000002') == 1)
    check('bucket le=0.000128 holds 5 (cumulative)', value(h, h + '_bucket', library=lib, le='0.000128') == 5)
    check('bucket le=0.004096 holds 7', value(h, h + '_bucket', library=lib, le='0.004096') == 7)
    check('the largest finite bound is exact (1073.741824 s)',
          'le="1073.741824"' in text and value(h, h + '_bucket', library=lib, le='1073.741824') == 7)
    check('+Inf holds all 8', value(h, h + '_bucket', library=lib, le='+Inf') == 8)
    check('_count is 8', value(h, h + '_count', library=lib) == 8)
    check('_sum is the total in seconds',
          abs((value(h, h + '_sum', library=lib) or 0) - 2000.012345678) < 1e-6)
    check('restarts_total 2', value('nifkit_host_restarts', 'nifkit_host_restarts_total', library=lib) == 2)
    check('host_up 1 with a host, 0 without',
          value('nifkit_host_up', 'nifkit_host_up', library=lib) == 1 and
          value('nifkit_host_up', 'nifkit_host_up', library='/srv/idle.so') == 0)
    check('start time and memory peak given where known, absent where not',
          value('nifkit_host_start_time_seconds', 'nifkit_host_start_time_seconds', library=lib) == 1700000000 and
          value('nifkit_host_memory_peak_bytes', 'nifkit_host_memory_peak_bytes', library=lib) == 1048576 and
          value('nifkit_host_memory_peak_bytes', 'nifkit_host_memory_peak_bytes', library='/srv/idle.so') is None)

    empty = tempfile.mkdtemp(prefix='nk-prom-empty-')
    p = scrape(nifkit, empty, '--format', 'prometheus')
    fams = {f.name: f for f in text_string_to_metric_families(p.stdout)}
    check('with no runtime, every family is still declared, with no sample',
          p.returncode == 0 and set(FAMILIES) <= set(fams) and all(not f.samples for f in fams.values()))
    p = scrape(nifkit, empty, '--format', 'yaml')
    check('an unknown format is a usage error naming it',
          p.returncode == 64 and "unknown format 'yaml'" in p.stderr, p.stderr)
    p = scrape(nifkit, empty, '--format')
    check('--format without a value is a usage error', p.returncode == 64 and 'needs a value' in p.stderr, p.stderr)


def live(path, part, min_calls):
    with open(path) as f:
        text = f.read()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    calls = [s for s in fams['nifkit_calls'].samples if part in s.labels.get('library', '')]
    check('a live scrape has the wrapped library\'s calls', calls and calls[0].value >= min_calls, text)
    counts = [s for s in fams['nifkit_call_duration_seconds'].samples
              if s.name.endswith('_count') and part in s.labels.get('library', '')]
    check('and its latency histogram counts them', counts and counts[0].value >= min_calls)
    check('and follows the format\'s rules', not strict_rules(text), '\n'.join(strict_rules(text)))


if __name__ == '__main__':
    if len(sys.argv) == 5 and sys.argv[1] == '--live':
        live(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) == 2:
        synthetic(sys.argv[1])
    else:
        sys.exit(__doc__)
    finish()
