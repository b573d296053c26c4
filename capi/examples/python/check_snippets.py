#!/usr/bin/env python3
"""Check the Python snippets of the docs against the header, since CI cannot run them (no
PyTorch, no GPU): every ```python block of README.md and docs/capi.md (and bnf_demo.py) must
parse, every `lib.bnf_*` it names must be declared in capi/include/bnf.h, every `argtypes`
list and direct `lib.bnf_*(...)` call must have the header's number of parameters, and every
ctypes Structure with a literal `_fields_` list must have the header struct's field names in
order.

    python3 capi/examples/python/check_snippets.py

Exit status 0 when everything matches; otherwise one line per mismatch.
"""
import ast
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
HEADER = os.path.join(ROOT, "capi", "include", "bnf.h")
DOCS = ["README.md", os.path.join("docs", "capi.md")]
SCRIPTS = [os.path.join("capi", "examples", "python", "bnf_demo.py")]


def header():
    """(functions: name -> parameter count, structs: name -> field names) of bnf.h."""
    text = re.sub(r"/\*.*?\*/", "", open(HEADER).read(), flags=re.S)
    functions = {}
    for name, params in re.findall(r"\b(bnf_\w+)\(([^;{]*?)\);", text, flags=re.S):
        params = params.strip()
        functions[name] = 0 if params in ("", "void") else params.count(",") + 1
    structs = {}
    for name, body in re.findall(r"typedef struct (\w+) \{(.*?)\} \1;", text, flags=re.S):
        structs[name] = re.findall(r"(\w+);", body)
    return functions, structs


def lib_names(node):
    """The `bnf_*` attributes of `lib` used anywhere under `node`."""
    return [n.attr for n in ast.walk(node)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            and n.value.id == "lib" and n.attr.startswith("bnf_")]


def check(where, source, functions, structs, errors):
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        errors.append(f"{where}: does not parse: {e}")
        return
    assigned = {t.id: n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                for t in n.targets if isinstance(t, ast.Name)}
    for name in lib_names(tree):
        if name not in functions:
            errors.append(f"{where}: lib.{name} is not in bnf.h")

    def want_arity(names, got, what):
        for name in names:
            if name in functions and functions[name] != got:
                errors.append(f"{where}: {what} of {name} has {got} entries, bnf.h has "
                              f"{functions[name]} parameters")

    for node in ast.walk(tree):
        # lib.NAME.argtypes = [...]
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.List):
            for t in node.targets:
                if isinstance(t, ast.Attribute) and t.attr == "argtypes":
                    want_arity(lib_names(t), len(node.value.elts), "argtypes")
        # for fn in <lib.X, ... or NAME.values()>: fn.argtypes = [...]
        if isinstance(node, ast.For):
            sources = [node.iter]
            for n in ast.walk(node.iter):
                if isinstance(n, ast.Name) and n.id in assigned:
                    sources.append(assigned[n.id])
            names = [x for s in sources for x in lib_names(s)]
            for a in node.body:
                if (isinstance(a, ast.Assign) and isinstance(a.value, ast.List)
                        and any(isinstance(t, ast.Attribute) and t.attr == "argtypes"
                                for t in a.targets)):
                    want_arity(names, len(a.value.elts), "argtypes (loop)")
        # lib.NAME(args)
        if isinstance(node, ast.Call) and not node.keywords:
            want_arity(lib_names(node.func) if isinstance(node.func, ast.Attribute)
                       and isinstance(node.func.value, ast.Name) else [],
                       len(node.args), "call")
        # class X(C.Structure): _fields_ = [("name", type), ...]
        if isinstance(node, ast.ClassDef) and node.name in structs:
            for a in node.body:
                if (isinstance(a, ast.Assign) and isinstance(a.value, ast.List)
                        and any(isinstance(t, ast.Name) and t.id == "_fields_"
                                for t in a.targets)):
                    names = [e.elts[0].value for e in a.value.elts]
                    if names != structs[node.name]:
                        errors.append(f"{where}: {node.name} fields {names} != bnf.h "
                                      f"{structs[node.name]}")


def main():
    functions, structs = header()
    errors, blocks = [], 0
    for doc in DOCS:
        text = open(os.path.join(ROOT, doc)).read()
        for i, m in enumerate(re.finditer(r"```python\n(.*?)```", text, flags=re.S)):
            line = text[:m.start()].count("\n") + 1
            check(f"{doc}:{line}", m.group(1), functions, structs, errors)
            blocks += 1
    for script in SCRIPTS:
        check(script, open(os.path.join(ROOT, script)).read(), functions, structs, errors)
    for e in errors:
        print(e)
    print(f"{blocks} doc snippets and {len(SCRIPTS)} script(s) checked against bnf.h "
          f"({len(functions)} functions, {len(structs)} structs): {len(errors)} mismatch(es)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
