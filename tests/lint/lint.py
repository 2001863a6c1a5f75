#!/usr/bin/env python3
"""tests/lint/lint.py - cheap guards from STYLE.md, run by ctest as unit.lint:

1. banned functions (curl's list) in our C sources;
2. no module includes another module's `_int.h`, and plugins include no host header (except
   warehouse/warehouse.h and core/err.h in plugins/warehouse);
3. every public header compiles on its own (one translation unit per header).

usage: lint.py REPO_ROOT CC [include dirs...]
"""
import os
import re
import subprocess
import sys
import tempfile

BANNED = ["gets", "sprintf", "vsprintf", "strcpy", "strcat", "strtok", "atoi", "atol", "atoll",
          "strerror", "localtime", "gmtime", "system", "popen", "alloca"]
MODULES = ["core", "store", "scheduler", "executor", "webui", "warehouse", "cli", "plugins"]
SKIP_DIRS = {"build", "node_modules", ".git"}


def sources(root):
    for top in MODULES + ["tests", "bench", "include"]:
        base = os.path.join(root, top)
        for d, dirs, files in os.walk(base):
            dirs[:] = [x for x in dirs if x not in SKIP_DIRS and not x.startswith("build")]
            for f in files:
                if f.endswith((".c", ".h")):
                    yield os.path.join(d, f)


# The one exception to "plugins see only weir/plugin.h": the warehouse plugin links the
# bundled engine and uses its public header, plus core/err.h for the struct weir_err that
# header's functions fill (docs/architecture.md).
PLUGIN_HOST_HEADERS = {os.path.join("plugins", "warehouse"): {"warehouse/warehouse.h", "core/err.h"}}


def plugin_may_include(rel, inc):
    for folder, allowed in PLUGIN_HOST_HEADERS.items():
        if rel.startswith(folder + os.sep) and inc in allowed:
            return True
    return False


def strip_comments_and_strings(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'"(\\.|[^"\\\n])*"', '""', text)
    text = re.sub(r"'(\\.|[^'\\\n])'", "''", text)
    return text


def main():
    root, cc, incs = sys.argv[1], sys.argv[2], sys.argv[3:]
    problems = []
    banned_re = re.compile(r"(?<![\w.>])(" + "|".join(BANNED) + r")\s*\(")
    for path in sources(root):
        rel = os.path.relpath(path, root)
        with open(path, errors="replace") as f:
            raw = f.read()
        code = strip_comments_and_strings(raw)
        for n, line in enumerate(code.splitlines(), 1):
            m = banned_re.search(line)
            if m and "lint: allow" not in raw.splitlines()[n - 1]:
                problems.append(f"{rel}:{n}: banned function '{m.group(1)}'")
        module = rel.split(os.sep)[0]
        for n, line in enumerate(raw.splitlines(), 1):
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m:
                continue
            inc = m.group(1)
            if inc.endswith("_int.h") and "/" in inc and inc.split("/")[0] != module and module != "tests":
                problems.append(f"{rel}:{n}: includes another module's internal header '{inc}'")
            if module == "plugins" and "/" in inc and inc.split("/")[0] in MODULES and not inc.startswith("plugins/") \
                    and not plugin_may_include(rel, inc):
                problems.append(f"{rel}:{n}: a plugin includes host header '{inc}' (only weir/plugin.h)")
    # public headers compile on their own
    headers = ["include/weir/plugin.h"]
    for mod in MODULES:
        d = os.path.join(root, mod)
        if not os.path.isdir(d) or mod in ("plugins", "cli"):
            continue
        for f in sorted(os.listdir(d)):
            if f.endswith(".h") and not f.endswith("_int.h"):
                headers.append(f"{mod}/{f}")
    with tempfile.TemporaryDirectory() as tmp:
        for h in headers:
            src = os.path.join(tmp, "h.c")
            with open(src, "w") as f:
                f.write(f'#include "{h}"\n#include "{h}"\n')
            cmd = [cc, "-std=gnu11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                   "-I", root, "-I", os.path.join(root, "include")] + [f"-I{i}" for i in incs] + [src]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                problems.append(f"{h}: does not compile on its own:\n{p.stderr.strip()}")
    for p in problems:
        print(p)
    print(f"lint: {len(problems)} problem(s) in {len(headers)} headers and the sources")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
