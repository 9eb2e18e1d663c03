#!/usr/bin/python3
"""errors_doc.py -- docs/ERRORS.md, the list of every failure message libnode can
write, made from the sources: each call of node__msg(buf, STATUS, "format", ...) and of
node__io_say(buf, STATUS, path, "format", ...) (which puts "path: " in front) in src/,
grouped by source file, one line each, with its status.  printf conversions are shown
as placeholders: %s as <s>, %g as <x>, %zu as <n>, and so on.

    /usr/bin/python3 tests/errors_doc.py          # rewrite docs/ERRORS.md
    /usr/bin/python3 tests/errors_doc.py --check  # fail if docs/ERRORS.md is stale (CI)
"""
import argparse
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "ERRORS.md")

CALLS = {"node__msg": 2, "node__io_say": 3, "say": 3}   # index of the format argument

PLACEHOLDER = [
    (r"%%", "%"),
    (r"%[-+ #0]*\d*(?:\.\d+)?(?:zu|zd|lld|llu|ld|lu|d|u|i)", "<n>"),
    (r"%[-+ #0]*\d*(?:\.\d+)?[gGeEf]", "<x>"),
    (r"%#?l?l?x", "<hex>"),
    (r"%[-+ #0]*\d*(?:\.\*)?(?:\.\d+)?s", "<s>"),
]


def split_args(text, start):
    """The arguments of the call whose '(' is at text[start], as source strings."""
    depth, i, args, cur, in_str, esc = 0, start, [], [], None, False
    while i < len(text):
        c = text[i]
        if in_str:
            cur.append(c)
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == in_str:
                in_str = None
        elif c in "\"'":
            in_str = c
            cur.append(c)
        elif c == "(":
            depth += 1
            if depth > 1:
                cur.append(c)
        elif c == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(cur).strip())
                return args
            cur.append(c)
        elif c == "," and depth == 1:
            args.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    return None


def literal(arg):
    """The concatenated string literals of an argument, or None if it has none."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', arg)
    if not parts:
        return None
    s = "".join(parts)
    s = s.replace('\\"', '"').replace("\\\\", "\\")
    for pat, rep in PLACEHOLDER:
        s = re.sub(pat, rep, s)
    return s


def collect():
    rows = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "src", "**", "*.c"), recursive=True)):
        rel = os.path.relpath(path, ROOT)
        text = open(path, encoding="utf-8").read()
        for m in re.finditer(r"\b(node__msg|node__io_say|say)\s*\(", text):
            name = m.group(1)
            # skip the definitions and declarations themselves
            line_start = text.rfind("\n", 0, m.start()) + 1
            if re.match(r"\s*(node_status|static|NODE__HIDDEN|#\s*define)", text[line_start:m.start()]):
                continue
            args = split_args(text, m.end() - 1)
            if not args or len(args) <= CALLS[name]:
                continue
            fmt = literal(args[CALLS[name]])
            if fmt is None:
                continue
            status = args[1] if re.match(r"NODE_E[A-Z]+$", args[1]) else None
            if status is None:
                # inside a switch on the status: the nearest case label above, within
                # the same function (no closing brace at column 0 in between)
                before = text[max(0, m.start() - 800):m.start()]
                cases = list(re.finditer(r"case (NODE_E[A-Z]+):", before))
                var = re.match(r"[A-Za-z_]\w*$", args[1])
                sets = list(re.finditer(r"\b%s\s*=\s*(NODE_E[A-Z]+)\s*;" % re.escape(args[1]),
                                        text[max(0, m.start() - 4000):m.start()])) if var else []
                fn_before = text[max(0, m.start() - 4000):m.start()]
                if cases and "\n}" not in before[cases[-1].end():]:
                    status = cases[-1].group(1)
                elif sets and "\n}" not in fn_before[sets[-1].end():]:
                    status = sets[-1].group(1)
                else:
                    status = "(varies)"
            if name != "node__msg":
                fmt = "<path>: " + fmt
            if not re.sub(r"<\w+>|[.:\s]", "", fmt):
                continue   # a pass-through ("%s"): the text comes from elsewhere
            rows.setdefault(rel, []).append((status, fmt))
    return rows


def render(rows):
    out = ["# The messages libnode writes when a call fails", "",
           "Every failure comes back as a `node_status`; the message says which argument or",
           "file and why. Solves and gradients write it into `node_stats.message`, other",
           "calls into the `node_error` passed to their `*_ex` form (see `libnode/core.h`).",
           "This list is made from the sources by `tests/errors_doc.py` (CI checks that it",
           "is current): one line per message, `<n>` an integer, `<x>` a real number, `<s>`",
           "a name or a time, `<path>` the file; `(varies)`: the status comes from the call",
           "that failed. Messages are at most 199 bytes; a long path is shortened from the",
           "left. `node_strerror(status)` stands in where a failure has no message of its own,",
           "and a file operation the C library refuses reads `<path>: <its strerror>`, e.g.",
           "`model.bin: No such file or directory`.",
           ""]
    total = 0
    for rel in sorted(rows):
        seen = []
        for status, fmt in rows[rel]:
            if (status, fmt) not in seen:
                seen.append((status, fmt))
        out.append("## `%s`" % rel)
        out.append("")
        out.append("| status | message |")
        out.append("|---|---|")
        for status, fmt in seen:
            out.append("| `%s` | %s |" % (status, fmt.replace("|", "\\|")))
            total += 1
        out.append("")
    out.insert(13, "%d messages in all." % total)
    out.insert(14, "")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    text = render(collect())
    if a.check:
        old = open(OUT, encoding="utf-8").read() if os.path.exists(OUT) else ""
        if old != text:
            print("docs/ERRORS.md is stale: run /usr/bin/python3 tests/errors_doc.py",
                  file=sys.stderr)
            return 1
        print("docs/ERRORS.md is current")
        return 0
    with open(OUT, "w", encoding="utf-8") as fh:
        fh.write(text)
    print("wrote %s" % os.path.relpath(OUT, ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
