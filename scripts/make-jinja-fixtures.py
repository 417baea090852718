#!/usr/bin/env python3
"""Regenerates test/Fixtures/chat/expressions.json: template expressions
(integer arithmetic at the 64-bit edges, slices and indexing of non-ASCII
strings, string escapes, filters) rendered by jinja2's immutable sandbox,
which transformers' apply_chat_template renders chat templates in (with
trim_blocks and lstrip_blocks). An expression Jinja refuses is recorded as
its exception's class: ours must refuse it too, in its own words.

Needs jinja2 (pip install jinja2, or the virtualenv of
make-chat-fixtures.py). CI and the tests never run this.

  python3 scripts/make-jinja-fixtures.py
"""

import json
import os

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "test", "Fixtures", "chat", "expressions.json")

# The context every expression sees.
CONTEXT = {"x": [1, 2, 3], "s": "h\u00e9llo \u65e5\u672c", "big": 1e300}

EXPRESSIONS = [
    # Python's floor division and modulo, exact past 2^53, at INT64_MIN.
    "{{ (-9223372036854775807 - 1) % -1 }}", "{{ 7 % -1 }}", "{{ -7 % 3 }}",
    "{{ 7 % -3 }}", "{{ 9007199254740993 // 1 }}", "{{ -7 // 2 }}",
    "{{ 7 // -2 }}", "{{ -7 // 2.0 }}", "{{ 7.5 % 2 }}", "{{ 7 / 2 }}",
    "{{ 1 // 0 }}", "{{ 1 % 0 }}",
    # Slices: steps past the 64-bit range, None, non-integers (refused; not
    # on literals, which Jinja folds at compile time, swallowing the error).
    "{{ 'abc'[1::9223372036854775807] }}",
    "{{ 'abcdef'[5:0:-9223372036854775807] }}",
    "{{ 'abcdef'[::2] }}", "{{ 'abcdef'[::-2] }}", "{{ x[::-2] | join(',') }}",
    "{{ 'abc'[None:2] }}", "{{ 'abc'[::None] }}", "{{ s[1.5:] }}",
    "{{ s[::1.5] }}", "{{ x[1.5:] }}", "{{ s[:'q'] }}", "{{ 'abc'[::0] }}",
    # Code points, not bytes.
    "{{ s[1] }}", "{{ s[1:3] }}", "{{ s | length }}", "{{ s | reverse }}",
    "{{ s[::-1] }}", "{{ s[-1] }}", "{{ s.replace('', '-') }}",
    "{{ s | replace('', '|') }}", "{{ 'abc'.replace('', 'x') }}",
    # range() and the sandbox's limit.
    "{{ range(1, 9223372036854775807, 9223372036854775807) | join(',') }}",
    "{{ range(100000) | length }}", "{{ range(100001) | length }}",
    "{{ range(5, 0, -2) | join(',') }}", "{{ range(1.5) }}", "{{ range() }}",
    "{{ range(3, 0) | length }}",
    # int().
    "{{ 'abc' | int }}", "{{ 'abc' | int(7) }}", "{{ ' 42 ' | int }}",
    "{{ '4.7' | int }}", "{{ -4.7 | int }}", "{{ 4.7 | int }}",
    # split() and reverse.
    "{{ 'abc'.split('') }}", "{{ 'a,b'.split(',') | join('|') }}",
    "{{ 'abc' | reverse }}",
    # String literals: Python's unicode-escape codec.
    '{{ "a\\u00e9" | length }}', '{{ "e\\u0301" | length }}',
    '{{ "\\x41\\x42" }}', '{{ "\\101\\60" }}', '{{ "\\U0001F600" | length }}',
    '{{ "tab\\there" }}', '{{ "q\\q" }}', "{{ 'it\\'s' }}",
    '{{ "say \\"hi\\"" }}', '{{ "back\\\\slash" }}', '{{ "\\xZZ" }}',
    '{{ "\\U00110000" }}', '{{ "\\a\\b\\f\\v" | length }}',
    '{{ "\\0" | length }}', '{{ "\\777" | length }}',
]


def main():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    cases = []
    for source in EXPRESSIONS:
        case = {"template": source}
        try:
            case["rendered"] = env.from_string(source).render(**CONTEXT)
        except Exception as e:  # what Jinja refuses
            case["error"] = type(e).__name__
        cases.append(case)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump({"jinja2": jinja2.__version__, "context": CONTEXT,
                   "cases": cases}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote", os.path.relpath(OUT), len(cases), "cases")


if __name__ == "__main__":
    main()
