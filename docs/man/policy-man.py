#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""nifkit-policy(5) from policies/schema.json: every key, its type, range,
default, description and an example, so the page cannot drift from the
schema (which a unit test holds equal to the loader).

  policy-man.py SCHEMA OUT VERSION
"""
import json
import sys


def roff(text):
    """Text for a roff line: backslashes and leading dots and quotes escaped."""
    text = str(text).replace('\\', '\\e').replace('-', '\\-')
    if text[:1] in ('.', "'"):
        text = '\\&' + text
    return text


def value(v):
    return json.dumps(v, separators=(', ', ': '))


def describe(name, prop, required, out):
    typ = prop.get('type', '')
    if 'enum' in prop:
        typ = ' | '.join(value(e) for e in prop['enum'])
    elif 'const' in prop:
        typ = value(prop['const'])
    elif typ == 'integer' and 'minimum' in prop:
        typ = 'integer, %d to %d' % (prop['minimum'], prop['maximum'])
    elif typ == 'array' and prop.get('items', {}).get('type') == 'string':
        typ = 'array of strings'
    elif typ == 'array':
        typ = 'array of objects'
    out.append('.TP')
    out.append('.B %s' % roff(name))
    out.append(roff('(%s%s)' % (typ, ', required' if required else '')))
    out.append('.br')
    out.append(roff(prop.get('description', '')))
    if 'default' in prop:
        out.append('.br')
        out.append(roff('Default: %s.' % value(prop['default'])))
    for ex in prop.get('examples', [])[:1]:
        out.append('.br')
        out.append(roff('Example: %s' % value(ex)))


def walk(obj, prefix, out):
    required = set(obj.get('required', []))
    for name, prop in obj.get('properties', {}).items():
        full = prefix + name
        describe(full, prop, name in required, out)
        if prop.get('type') == 'object':
            walk(prop, full + '.', out)
        elif prop.get('type') == 'array' and prop.get('items', {}).get('type') == 'object':
            walk(prop['items'], full + '[].', out)


def main():
    schema_path, out_path, version = sys.argv[1:4]
    with open(schema_path) as f:
        schema = json.load(f)
    out = [
        '.\\" Generated from policies/schema.json by docs/man/policy-man.py; do not edit.',
        '.TH NIFKIT\\-POLICY 5 "" "nifkit %s" "File Formats"' % roff(version),
        '.SH NAME',
        'nifkit\\-policy \\- what the sandboxed host of one NIF library may do',
        '.SH DESCRIPTION',
        roff('A nifkit policy is a JSON object, one file per wrapped library (LIB.policy.json beside the '
             'wrapped library, or $NIFKIT_POLICY). ' + schema.get('description', '')),
        '.PP',
        roff('Unknown keys, wrong types, duplicate keys, NUL characters and invalid UTF-8 are errors; '
             'every error names the file, line, column and JSON path. A key left out takes its default; '
             'null is not a default.'),
        '.SH KEYS',
    ]
    walk(schema, '', out)
    out += [
        '.SH EXAMPLE',
        '.nf',
        roff('{"nifkit_policy": 1, "limits": {"memory_mb": 128, "call_timeout_ms": 2000},'),
        roff(' "files": [{"path": "/var/lib/tenant", "access": "read"}]}'),
        '.fi',
        '.SH ENTITLEMENTS',
        roff('A library may declare what it needs in the same words: a JSON object with any of files, network '
             'and limits (and optionally "nifkit_entitlements": 1), checked as strictly as a policy, carried in '
             'its ELF section .nifkit_entitlements (the macro NIFKIT_ENTITLEMENTS of <nifkit_entitlements.h>) '
             'or in NAME.entitlements.json beside NAME.so. nifkit wrap runs the library under the '
             'intersection of its entitlements and the policy: file grants cut to the deeper directory and '
             'the lesser access, the endpoints and names both list, the lower of two limits; every other key '
             'is the policy\'s.'),
        '.SH FILES',
        roff('PREFIX/share/nifkit/policies: schema.json (the JSON Schema of this format, with every key\'s '
             'description, default and examples, for editors) and ready policies for jiffy, fast_yaml, fxml, '
             'stringprep and OTP\'s crypto.'),
        '.SH SEE ALSO',
        '.BR nifkit (1)',
    ]
    with open(out_path, 'w') as f:
        f.write('\n'.join(out) + '\n')


if __name__ == '__main__':
    main()
