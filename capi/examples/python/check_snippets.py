#!/usr/bin/env python3
"""Check the Python snippets of the docs against the header, since CI cannot run them (no
PyTorch, no GPU): every ```python block of README.md and docs/capi.md (and bnf_demo.py) must
parse, every `lib.bnf_*` it names must be declared in capi/include/bnf.h, every `argtypes`
list and direct `lib.bnf_*(...)` call must have the header's number of parameters, and every
ctypes Structure with a literal `_fields_` list must have the header struct's field names in
order.

Every function a snippet calls (directly, `lib.bnf_x(...)`, or through a dict or list of
them, `TABLE[key](...)`) must have its `argtypes` set when it takes parameters (without them
ctypes passes Python ints as C `int`, truncating pointers), and its `restype` set when it
returns anything but a status or `void` (a pointer or a `size_t`), in that snippet or an
earlier one of the same document (later snippets may continue earlier ones; say so in the
text).

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


# Return types ctypes' default restype (C int) reads correctly.
INT_RESULTS = ("BnfStatus", "void", "int", "int32_t")


def header():
    """(functions: name -> parameter count, needs_restype: names, structs: name -> field
    names) of bnf.h."""
    text = re.sub(r"/\*.*?\*/", "", open(HEADER).read(), flags=re.S)
    functions, needs_restype = {}, set()
    for ret, name, params in re.findall(r"^([^\n(#]*?)\b(bnf_\w+)\(([^;{]*?)\);", text,
                                        flags=re.S | re.M):
        params = params.strip()
        functions[name] = 0 if params in ("", "void") else params.count(",") + 1
        if "*" in ret or ret.split()[-1] not in INT_RESULTS:
            needs_restype.add(name)
    structs = {}
    for name, body in re.findall(r"typedef struct (\w+) \{(.*?)\} \1;", text, flags=re.S):
        structs[name] = re.findall(r"(\w+);", body)
    return functions, needs_restype, structs


def lib_names(node):
    """The `bnf_*` attributes of `lib` used anywhere under `node`."""
    return [n.attr for n in ast.walk(node)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            and n.value.id == "lib" and n.attr.startswith("bnf_")]


def loop_names(node, assigned):
    """The `lib.bnf_*` functions the `for` loop `node` iterates over: named in its iterable,
    directly or through a name assigned earlier (`for fn in FNS.values()`)."""
    sources = [node.iter]
    for n in ast.walk(node.iter):
        if isinstance(n, ast.Name) and n.id in assigned:
            sources.append(assigned[n.id])
    return [x for s in sources for x in lib_names(s)]


def declared(tree, assigned):
    """{"argtypes": names, "restype": names}: the `lib.bnf_*` functions whose attribute is set
    in `tree`, directly (`lib.NAME.argtypes = ...`) or in a loop over them (`for fn in
    <lib.X, ... or NAME.values()>: fn.argtypes = ...`)."""
    out = {"argtypes": set(), "restype": set()}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Attribute) and t.attr in out:
                    out[t.attr].update(lib_names(t))
        if isinstance(node, ast.For):
            names = loop_names(node, assigned)
            for a in ast.walk(node):
                if isinstance(a, ast.Assign):
                    for t in a.targets:
                        if isinstance(t, ast.Attribute) and t.attr in out:
                            out[t.attr].update(names)
    return out


def called(node, assigned):
    """The `lib.bnf_*` functions the call `node` may call: `lib.NAME(...)`, `ALIAS(...)` for
    `ALIAS = lib.NAME`, or `TABLE[...](...)` for a TABLE assigned a dict or list of them."""
    f = node.func
    if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "lib":
        return lib_names(f)
    if isinstance(f, ast.Name) and isinstance(assigned.get(f.id), ast.Attribute):
        return lib_names(assigned[f.id])
    if isinstance(f, ast.Subscript) and isinstance(f.value, ast.Name):
        table = assigned.get(f.value.id)
        if isinstance(table, (ast.Dict, ast.List, ast.Tuple)):
            return lib_names(table)
    return []


def check(where, source, functions, needs_restype, structs, errors, before):
    """Check one snippet; `before` holds what earlier snippets of the same document declared
    (updated with this one's)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        errors.append(f"{where}: does not parse: {e}")
        return
    assigned = {t.id: n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                for t in n.targets if isinstance(t, ast.Name)}
    for attr, names in declared(tree, assigned).items():
        before[attr].update(names)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for name in called(node, assigned):
            if functions.get(name, 0) > 0 and name not in before["argtypes"]:
                errors.append(f"{where}: calls {name} without setting its argtypes (ctypes "
                              f"would pass pointers as C int)")
            if name in needs_restype and name not in before["restype"]:
                errors.append(f"{where}: calls {name} without setting its restype (it does "
                              f"not return an int)")
            if not node.keywords and name in functions and functions[name] != len(node.args):
                errors.append(f"{where}: call of {name} has {len(node.args)} arguments, bnf.h "
                              f"has {functions[name]} parameters")
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
            names = loop_names(node, assigned)
            for a in node.body:
                if (isinstance(a, ast.Assign) and isinstance(a.value, ast.List)
                        and any(isinstance(t, ast.Attribute) and t.attr == "argtypes"
                                for t in a.targets)):
                    want_arity(names, len(a.value.elts), "argtypes (loop)")
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


def self_test(functions, needs_restype, structs):
    """The checks catch what they are for: a call without argtypes (the README bug this was
    written for), a pointer result without restype, a wrong arity; a complete snippet passes."""
    bad = {
        "no argtypes": "lib.bnf_forward_backward_f32(1, 2, 3, None, 4)",
        "no argtypes (table)": "T = {0: lib.bnf_forward_f32}\nT[0](1, 2, None, 3)",
        "no restype": "lib.bnf_last_error_message().decode()",
        "arity": "lib.bnf_forward_f32.argtypes = [1, 2, 3]",
    }
    for what, src in bad.items():
        errors = []
        check(what, src, functions, needs_restype, structs, errors,
              {"argtypes": set(), "restype": set()})
        if not errors:
            return f"self-test: the checker missed a snippet with {what}"
    good = ("lib.bnf_forward_f32.argtypes = [1, 2, 3, 4]\n"
            "lib.bnf_last_error_message.restype = 0\n"
            "if lib.bnf_forward_f32(1, 2, None, 3) != 0:\n"
            "    print(lib.bnf_last_error_message())\n")
    errors = []
    check("good", good, functions, needs_restype, structs, errors,
          {"argtypes": set(), "restype": set()})
    return f"self-test: a complete snippet was rejected: {errors}" if errors else None


def main():
    functions, needs_restype, structs = header()
    errors, blocks = [], 0
    failed = self_test(functions, needs_restype, structs)
    if failed:
        errors.append(failed)
    for doc in DOCS:
        text = open(os.path.join(ROOT, doc)).read()
        before = {"argtypes": set(), "restype": set()}
        for i, m in enumerate(re.finditer(r"```python\n(.*?)```", text, flags=re.S)):
            line = text[:m.start()].count("\n") + 1
            check(f"{doc}:{line}", m.group(1), functions, needs_restype, structs, errors,
                  before)
            blocks += 1
    for script in SCRIPTS:
        check(script, open(os.path.join(ROOT, script)).read(), functions, needs_restype,
              structs, errors, {"argtypes": set(), "restype": set()})
    for e in errors:
        print(e)
    print(f"{blocks} doc snippets and {len(SCRIPTS)} script(s) checked against bnf.h "
          f"({len(functions)} functions, {len(structs)} structs): {len(errors)} mismatch(es)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
