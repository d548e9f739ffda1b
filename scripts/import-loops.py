#!/usr/bin/env python3
"""List module-level import loops among a crate's modules.

Usage: import-loops.py SRC_DIR [--split a,b,c] [--tests]

Every file's `crate::X...` and `super::X...` paths (in `use` lines and inline)
are collapsed to a top module, and inside the modules named by --split to the
second level (`logs::parse`). Test modules (`#[cfg(test)]` blocks from their
attribute to the end of the file, and files named `tests.rs` or under a
`tests/` folder) are left out unless --tests is given. Prints each strongly
connected component of more than one module, with its edges, and exits 1 if
there is any. .ci/run runs it on every crate.
"""
import os
import re
import sys

args = [a for a in sys.argv[1:] if not a.startswith("--")]
if len(args) != 1:
    sys.exit(__doc__)
ROOT = args[0]
SPLIT = set()
for a in sys.argv[1:]:
    if a.startswith("--split="):
        SPLIT = {x for x in a.split("=", 1)[1].split(",") if x}
with_tests = "--tests" in sys.argv


def module_of(rel):
    parts = rel[:-3].split(os.sep)
    if parts[0] in ("main", "lib", "bin") or parts[0] == "bin":
        return None
    if parts[0] in SPLIT and len(parts) > 1:
        return parts[0] + "::" + parts[1]
    return parts[0]


files = {}
for dirpath, _, names in os.walk(ROOT):
    for n in names:
        if n.endswith(".rs"):
            rel = os.path.relpath(os.path.join(dirpath, n), ROOT)
            if rel.startswith("bin" + os.sep):
                continue
            is_test = n == "tests.rs" or (os.sep + "tests" + os.sep) in (os.sep + rel)
            if is_test and not with_tests:
                continue
            m = module_of(rel)
            if m:
                files[rel] = m
modules = set(files.values())


def target(path):
    """`a::b::c` (after crate::) -> collapsed module name, or None."""
    parts = path.split("::")
    top = parts[0]
    if top in SPLIT and len(parts) > 1 and f"{top}::{parts[1]}" in modules:
        return f"{top}::{parts[1]}"
    if top in modules or any(m.startswith(top + "::") for m in modules):
        return top
    return None


def expand(prefix, body):
    """Expand `prefix::{a, b::{c, d}}` into simple paths (first components suffice)."""
    out = []
    depth, cur = 0, ""
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    paths = []
    for item in out:
        m = re.match(r"([A-Za-z_][\w:]*?)(?:::)?\{(.*)\}$", item, re.S)
        if m:
            paths += expand(prefix + "::" + m.group(1), m.group(2))
        else:
            paths.append(prefix + "::" + item)
    return paths


edges = {}
for rel, mod in files.items():
    text = open(os.path.join(ROOT, rel)).read()
    if not with_tests:
        i = text.find("#[cfg(test)]\nmod tests")
        if i >= 0:
            text = text[:i]
    text = re.sub(r"//[^\n]*", "", text)
    # the module a `super::` in this file refers to
    parts = rel[:-3].split(os.sep)
    parent = "::".join(parts[:-1])
    found = []
    for m in re.finditer(r"\b(crate|super)::\{([^;]*?)\};", text, re.S):
        base = "" if m.group(1) == "crate" else parent
        for p in expand(base or "X", m.group(2)):
            p = p[2:] if p.startswith("X::") else p
            found.append(p)
    for m in re.finditer(r"\b(crate|super)::((?:\w+::)*\w+)", text):
        base = "" if m.group(1) == "crate" else parent
        found.append((base + "::" if base else "") + m.group(2))
    for p in found:
        t = target(p.strip())
        if t and t != mod:
            edges.setdefault(mod, {}).setdefault(t, set()).add(rel)

# Tarjan's SCC
index, low, stack, on, sccs = {}, {}, [], set(), []
counter = [0]


def strong(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in edges.get(v, {}):
        if w not in index:
            strong(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            sccs.append(sorted(comp))


for v in sorted(modules):
    if v not in index:
        strong(v)

if not sccs:
    print("no import loops among", len(modules), "modules of", ROOT)
    sys.exit(0)
for comp in sccs:
    print(f"loop in {ROOT}:", " ".join(comp))
    for a in comp:
        for b in sorted(edges.get(a, {})):
            if b in comp:
                print(f"  {a} -> {b}  ({', '.join(sorted(edges[a][b]))})")
sys.exit(1)
