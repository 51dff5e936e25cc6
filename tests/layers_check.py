#!/usr/bin/env python3
"""Checks the dependency rule: the ```layers block of README.md's "Layout" section.

Each row of the block names a folder and the folders its files may include from and its
libraries may link (besides itself):

    core:
    net:       core
    filters/*: core filters directory/directory.h
    app:       *

* A file belongs to the most specific row whose folder contains it. `filters/*` makes every
  sub-folder of filters/ a folder of its own (filters/ocr, filters/rbl, ...), so `filters` then
  means only the files directly in filters/.
* An entry is a folder (a row name), `X/*` (any folder made by that row) or a path to one file or
  sub-folder (`directory/directory.h`): such a path allows including those files, not linking the
  library they are built into. `*` allows everything (app, tests, bench).
* Every folder holding C++ files must have a row (a new folder cannot slip past the rule).

Two kinds of edges are checked:

1. includes: every `#include "..."` (and `<...>` naming a file of the tree) in the .h/.cc files of
   every folder with a row, resolved like the compiler does (next to the file, then from the
   source root) and mapped to its folder;
2. links: each project target's dependencies from the CMake File API (codemodel-v2), each target
   mapped to the folder(s) of its source files. Imported (third-party) targets are not in the
   codemodel and so are ignored. The File API lists a target's dependencies transitively; a
   dependency not named in the target's own target_link_libraries() is reported as inherited
   ("through V") only when both hops are allowed and the rule still forbids the whole edge;
   otherwise the hop at fault is what gets reported.

The codemodel comes from --build's File API reply when there is a current one (CMakeLists.txt
asks for it at configure time, so it is there from the second configure on); otherwise the
tree is configured into a scratch directory (configure only, ~10 s).

Usage: layers_check.py [--source DIR] [--build DIR] [--readme FILE] [--includes-only] [--list]
Exit status: 0 no violation, 1 violations (one line each on stdout), 2 bad rule or setup.
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

CXX_SUFFIXES = (".h", ".hh", ".hpp", ".ipp", ".cc", ".cpp", ".cxx", ".c", ".h.in")
QUERY_CLIENT = "client-mxfront"
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')


class RuleError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# The rule


class Rule:
    """The parsed ```layers block: rows (folder or `folder/*`) -> allowed entries."""

    def __init__(self, rows, lines):
        self.rows = rows    # name -> list of entries, in README order
        self.lines = lines  # name -> README line number
        self.validate()

    @staticmethod
    def parse(readme_path):
        with open(readme_path, encoding="utf-8") as f:
            text = f.read().splitlines()
        blocks, start = [], None
        for n, line in enumerate(text, 1):
            stripped = line.strip()
            if start is None and re.fullmatch(r"```\s*layers\s*", stripped):
                start, body = n, []
            elif start is not None and stripped.startswith("```"):
                blocks.append((start, body))
                start = None
            elif start is not None:
                body.append((n, line))
        if start is not None:
            raise RuleError(f"{readme_path}:{start}: ```layers block is not closed")
        if len(blocks) != 1:
            raise RuleError(f"{readme_path}: expected exactly one ```layers block, found {len(blocks)}")
        rows, lines = {}, {}
        for n, line in blocks[0][1]:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            name, sep, rest = line.partition(":")
            name = name.strip().strip("/")
            if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*(/\*)?", name):
                raise RuleError(f"{readme_path}:{n}: expected `folder: folders it may use`, got {line!r}")
            if name in rows:
                raise RuleError(f"{readme_path}:{n}: folder {name} has two rows (first on line {lines[name]})")
            rows[name] = [e.strip("/") if e != "*" else e for e in re.split(r"[\s,]+", rest.strip()) if e]
            lines[name] = n
        if not rows:
            raise RuleError(f"{readme_path}:{blocks[0][0]}: the ```layers block has no rows")
        try:
            return Rule(rows, lines)
        except RuleError as e:
            raise RuleError(f"{readme_path}: {e}") from None

    # A unit is what a path belongs to: a row name, or for a `p/*` row, `p/<sub-folder>`.
    def unit_of(self, path):
        """(unit, row) of a source-relative path, or (None, None) if no row covers it."""
        best, best_key = (None, None), None
        parts = path.split("/")
        for row in self.rows:
            if row.endswith("/*"):
                base = row[:-2]
                depth = base.count("/") + 1
                if path.startswith(base + "/") and len(parts) >= depth + 2:
                    key = (depth + 1, 0)
                    unit = "/".join(parts[:depth + 1])
                else:
                    continue
            elif path == row or path.startswith(row + "/"):
                key = (row.count("/") + 1, 1)
                unit = row
            else:
                continue
            if best_key is None or key > best_key:
                best, best_key = (unit, row), key
        return best

    def is_unit_name(self, entry):
        return entry in self.rows and not entry.endswith("/*")

    def allows(self, row, unit, path=None):
        """May files of a unit of `row` depend on `unit` (and, for an include, on file `path`)?"""
        for entry in self.rows[row]:
            if entry == "*" or entry == unit:
                return True
            if entry.endswith("/*") and self.unit_of(unit + "/x")[1] == entry and unit != entry[:-2]:
                return True
            if path is not None and not self.is_unit_name(entry) and not entry.endswith("/*") and \
                    (path == entry or path.startswith(entry + "/")):
                return True
        return False

    def validate(self):
        for row, entries in self.rows.items():
            for e in entries:
                if e == "*" or e in self.rows:
                    continue
                if self.unit_of(e)[0] is None:
                    raise RuleError(f"line {self.lines[row]}: row {row}: {e} is in no folder of the rule")
        # The rule itself must be layered: no cycle between rows.
        def targets(row):
            out = set()
            for e in self.rows[row]:
                if e == "*":  # every row but the other `*` ones (nothing depends on app or tests)
                    out |= {r for r in self.rows if self.rows[r] != ["*"]}
                elif e in self.rows:
                    out.add(e)
                else:  # a file, or a sub-folder (which a `X/*` row makes a folder of its own)
                    out.add(self.unit_of(e if "." in e.rsplit("/", 1)[-1] else e + "/x")[1])
            out.discard(row)
            return out
        state = {}

        def visit(row, stack):
            state[row] = "open"
            for t in sorted(targets(row)):
                if state.get(t) == "open":
                    cycle = stack[stack.index(t):] + [t] if t in stack else [row, t]
                    raise RuleError(f"the rule has a cycle: {' -> '.join(cycle)}")
                if t not in state:
                    visit(t, stack + [t])
            state[row] = "done"
        for row in self.rows:
            if row not in state:
                visit(row, [row])

    def describe(self):
        width = max(len(r) for r in self.rows) + 1
        out = []
        for row, entries in self.rows.items():
            out.append(f"{(row + ':').ljust(width)} {' '.join(entries) if entries else '(nothing)'}")
        return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# The tree


def skip_dir(path, name, build_dirs):
    if name.startswith(".") or os.path.realpath(path) in build_dirs:
        return True
    return os.path.exists(os.path.join(path, "CMakeCache.txt"))  # some build tree


def source_files(source, build_dirs):
    """Source-relative paths of every C++ file in the tree (build trees and dot-folders pruned)."""
    out = []
    for root, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if not skip_dir(os.path.join(root, d), d, build_dirs))
        rel = os.path.relpath(root, source)
        for f in sorted(files):
            if f.endswith(CXX_SUFFIXES):
                out.append(f if rel == "." else f"{rel}/{f}".replace(os.sep, "/"))
    return out


def resolve_include(source, including, quote, name, tree_tops):
    """Source-relative path of an included file, or None if it is not part of the tree."""
    candidates = []
    if quote == '"':
        candidates.append(os.path.join(os.path.dirname(including), name))
    candidates.append(name)
    for c in candidates:
        c = os.path.normpath(c).replace(os.sep, "/")
        if c.startswith("../") or c == "..":
            continue
        if os.path.isfile(os.path.join(source, c)):
            return c
    # Not in the tree but named from the root of one of its folders: generated (core/version.h).
    name = os.path.normpath(name).replace(os.sep, "/")
    if quote == '"' and "/" in name and name.split("/")[0] in tree_tops:
        return name
    return None


def check_includes(rule, source, files):
    violations = []
    tree_tops = {f.split("/")[0] for f in files if "/" in f}
    for rel in files:
        unit, row = rule.unit_of(rel)
        if unit is None or rule.rows[row] == ["*"]:
            continue
        with open(os.path.join(source, rel), encoding="utf-8", errors="replace") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE_RE.match(line)
                if not m:
                    continue
                target = resolve_include(source, rel, m.group(1), m.group(2), tree_tops)
                if target is None:
                    continue
                tunit = rule.unit_of(target)[0] or target.split("/")[0]
                if tunit != unit and not rule.allows(row, tunit, target):
                    violations.append(
                        f"{rel}:{n}: includes {m.group(2)} (folder {unit} may not depend on folder {tunit})")
    return violations


def unlisted_folders(rule, files):
    """Folders holding C++ files that no row covers (one line per top folder)."""
    tops = {}
    for rel in files:
        if rule.unit_of(rel)[0] is None:
            tops.setdefault(rel.split("/")[0] if "/" in rel else ".", rel)
    return [f"{top}/: holds C++ files ({example}) but has no row in the layers rule"
            for top, example in sorted(tops.items())]


# ---------------------------------------------------------------------------------------------
# The targets (CMake File API)


def write_query(build):
    qdir = os.path.join(build, ".cmake", "api", "v1", "query", QUERY_CLIENT)
    os.makedirs(qdir, exist_ok=True)
    open(os.path.join(qdir, "codemodel-v2"), "a").close()


def newest_cmake_input(source, build_dirs):
    newest = 0.0
    for root, dirs, files in os.walk(source):
        dirs[:] = [d for d in dirs if not skip_dir(os.path.join(root, d), d, build_dirs)]
        for f in files:
            if f == "CMakeLists.txt" or f.endswith(".cmake"):
                newest = max(newest, os.path.getmtime(os.path.join(root, f)))
    return newest


def find_reply(build, source, build_dirs):
    """The codemodel JSON path in build's File API reply, or (None, why not)."""
    indexes = sorted(glob.glob(os.path.join(build, ".cmake", "api", "v1", "reply", "index-*.json")))
    if not indexes:
        return None, f"no CMake File API reply in {build}"
    index_path = indexes[-1]
    with open(index_path) as f:
        index = json.load(f)
    entry = index.get("reply", {}).get(QUERY_CLIENT, {}).get("codemodel-v2") \
        or index.get("reply", {}).get("codemodel-v2")
    if not entry or "jsonFile" not in entry:
        return None, f"the File API reply in {build} has no codemodel-v2"
    if newest_cmake_input(source, build_dirs) > os.path.getmtime(index_path):
        return None, f"the File API reply in {build} is older than the CMake files"
    path = os.path.join(os.path.dirname(index_path), entry["jsonFile"])
    with open(path) as f:
        src = json.load(f)["paths"]["source"]
    if os.path.realpath(src) != os.path.realpath(source):
        return None, f"{build} was configured from {src}, not {source}"
    return path, None


def configure_scratch(source, scratch):
    write_query(scratch)
    cmd = ["cmake", "-S", source, "-B", scratch]
    if shutil.which("ninja"):
        cmd += ["-G", "Ninja"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuleError(f"{' '.join(cmd)} failed:\n{r.stdout}{r.stderr}")
    path, why = find_reply(scratch, source, set())
    if path is None:
        raise RuleError(f"configured {scratch} but: {why}")
    return path


class Target:
    def __init__(self, name, sources, deps, dep_lines):
        self.name, self.sources, self.deps, self.dep_lines = name, sources, deps, dep_lines


def cmake_command_text(path, line):
    """The CMake command starting at `line` of `path` (up to its closing parenthesis)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()[line - 1:]
    except OSError:
        return ""
    text, depth, seen = [], 0, False
    for l in lines:
        l = re.sub(r"#.*", "", l)
        text.append(l)
        depth += l.count("(") - l.count(")")
        seen = seen or "(" in l
        if seen and depth <= 0:
            break
    return "\n".join(text)


def load_targets(codemodel_path, source):
    reply_dir = os.path.dirname(codemodel_path)
    with open(codemodel_path) as f:
        codemodel = json.load(f)
    src_root = os.path.realpath(codemodel["paths"]["source"])
    by_id = {}
    for config in codemodel["configurations"]:
        for ref in config["targets"]:
            with open(os.path.join(reply_dir, ref["jsonFile"])) as f:
                t = json.load(f)
            if t.get("isGeneratorProvided"):
                continue
            sources = set()
            for s in t.get("sources", []):
                if s.get("isGenerated"):
                    continue
                p = s["path"]
                if os.path.isabs(p):
                    p = os.path.relpath(os.path.realpath(p), src_root)
                p = os.path.normpath(p).replace(os.sep, "/")
                if not p.startswith("../"):
                    sources.add(p)
            graph = t.get("backtraceGraph", {})
            deps, dep_lines = set(), {}
            for d in t.get("dependencies", []):
                deps.add(d["id"])
                node = graph.get("nodes", [])[d["backtrace"]] if "backtrace" in d else None
                if node and "line" in node:
                    fpath = graph["files"][node["file"]]
                    if not os.path.isabs(fpath):
                        fpath = os.path.join(src_root, fpath)
                    dep_lines[d["id"]] = (fpath, node["line"])
            prev = by_id.get(t["id"])
            if prev:
                prev.sources |= sources
                prev.deps |= deps
                prev.dep_lines.update(dep_lines)
            else:
                by_id[t["id"]] = Target(t["name"], sources, deps, dep_lines)
    return by_id


def check_links(rule, targets):
    violations = []
    units = {}  # target id -> {unit: row}
    for tid, t in targets.items():
        u = {}
        for s in t.sources:
            unit, row = rule.unit_of(s)
            if unit is None:
                unit, row = s.split("/")[0], None  # a folder without a row
            u.setdefault(unit, row)
        units[tid] = u

    def forbidden(a, b):
        """(unit of a, unit of b) pairs the rule forbids when target a links target b."""
        out = []
        for ua, row in sorted(units[a].items()):
            if row is None or rule.rows[row] == ["*"]:
                continue
            for ub in sorted(units[b]):
                if ub != ua and not rule.allows(row, ub):
                    out.append((ua, ub))
        return out

    for tid, t in sorted(targets.items(), key=lambda kv: kv[1].name):
        mine = units[tid]
        if not mine:
            continue
        named = [u for u, row in mine.items() if row is not None and rule.rows[row] != ["*"]]
        if len(mine) > 1 and named:
            violations.append(f"target {t.name} mixes folders {', '.join(sorted(mine))} (one library per folder)")
        for dep in sorted(t.deps, key=lambda d: targets[d].name if d in targets else d):
            if dep not in targets or not units[dep]:
                continue
            bad = forbidden(tid, dep)
            if not bad:
                continue
            d = targets[dep]
            fpath, line = t.dep_lines.get(dep, (None, None))
            words = set(re.findall(r"[A-Za-z0-9_.:+-]+", cmake_command_text(fpath, line))) if fpath else set()
            through = [v for v in t.deps if v != dep and v in targets and dep in targets[v].deps]
            via = None
            if d.name not in words and through:
                # Inherited: report it here only if no hop on some path is itself at fault.
                clean = [v for v in through if not forbidden(tid, v) and not forbidden(v, dep)]
                if not clean:
                    continue
                via = targets[sorted(clean, key=lambda v: targets[v].name)[0]].name
            for ua, ub in bad:
                msg = f"target {t.name} (folder {ua}) links {d.name} (folder {ub})"
                violations.append(msg + (f" through {via}" if via else ""))
    return violations


# ---------------------------------------------------------------------------------------------


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default=os.path.dirname(here), help="source tree (default: this repository)")
    ap.add_argument("--build", help="configured build tree whose CMake File API reply to read")
    ap.add_argument("--readme", help="file holding the ```layers block (default: SOURCE/README.md)")
    ap.add_argument("--includes-only", action="store_true", help="check includes only (no CMake)")
    ap.add_argument("--list", action="store_true", help="print the parsed rule and exit")
    args = ap.parse_args(argv)
    source = os.path.realpath(args.source)
    readme = args.readme or os.path.join(source, "README.md")
    try:
        rule = Rule.parse(readme)
        if args.list:
            print(rule.describe())
            return 0
        build_dirs = {os.path.realpath(args.build)} if args.build else set()
        files = source_files(source, build_dirs)
        violations = unlisted_folders(rule, files) + check_includes(rule, source, files)
        if not args.includes_only:
            path, why = find_reply(args.build, source, build_dirs) if args.build else (None, "no --build")
            if path is not None:
                violations += check_links(rule, load_targets(path, source))
            else:
                with tempfile.TemporaryDirectory(prefix="layers-") as scratch:
                    print(f"layers_check: {why}; configuring {source} into a scratch tree", file=sys.stderr)
                    violations += check_links(rule, load_targets(configure_scratch(source, scratch), source))
    except RuleError as e:
        print(f"layers_check: {e}", file=sys.stderr)
        return 2
    for v in violations:
        print(v)
    print(f"layers_check: {len(violations)} violation(s) of the rule in {os.path.relpath(readme, source)}",
          file=sys.stderr)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
