#!/usr/bin/env python3
"""Self-test of tests/layers_check.py on small fake trees built in a temporary directory:
allowed and forbidden includes, one-file entries, `folder/*` rows, folders without a row, broken
rules, and (with cmake) allowed, forbidden and inherited links read from the CMake File API.

Usage: layers_check_test.py [-v]   (ctest: layers_check_self_test)"""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layers_check.py")

RULE = """\
# folder: folders it may use
core:
net:        core
directory:  core
filters:    core net directory/directory.h
filters/*:  core filters
app:        *
tests:      *
"""


def make_tree(root, rule, files):
    readme = f"# fake\n\n## Layout\n\n```layers\n{rule}```\n\nMore text.\n"
    files = dict(files)
    files.setdefault("README.md", readme)
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))


def run(*args):
    r = subprocess.run([sys.executable, CHECKER, *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


class IncludeTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="layers-test-")
        self.addCleanup(shutil.rmtree, self.root)

    def check(self, files, rule=RULE):
        make_tree(self.root, rule, files)
        return run("--source", self.root, "--includes-only")

    def test_allowed_includes_pass(self):
        rc, out, err = self.check({
            "core/log.h": "#pragma once\n",
            "net/dns.h": '#pragma once\n#include "core/log.h"\n#include <vector>\n#include <net/if.h>\n',
            "net/dns.cc": '#include "net/dns.h"\n#include "dns.h"\n',
            "filters/chain.h": '#include "net/dns.h"\n#include "directory/directory.h"\n',
            "filters/rbl/rbl.h": '#include "filters/chain.h"\n#include "core/log.h"\n#include "rbl_impl.h"\n',
            "filters/rbl/rbl_impl.h": "",
            "directory/directory.h": '#include "core/log.h"\n',
            "directory/ldap.h": '#include "directory/directory.h"\n',
            "app/main.cc": '#include "filters/rbl/rbl.h"\n#include "directory/ldap.h"\n',
            "tests/unit/x.cc": '#include "app/whatever.h"\n',
            "docs/notes.md": "not C++\n",
        })
        self.assertEqual((rc, out), (0, ""), err)
        self.assertIn("0 violation(s)", err)

    def test_forbidden_include_fails_with_file_line_and_folders(self):
        rc, out, _ = self.check({
            "core/log.h": '#pragma once\n#include <string>\n#include "net/dns.h"\n',
            "net/dns.h": '#include "core/log.h"\n',
        })
        self.assertEqual(rc, 1)
        self.assertEqual(out, "core/log.h:3: includes net/dns.h (folder core may not depend on folder net)\n")

    def test_file_entry_allows_that_file_only(self):
        rc, out, _ = self.check({
            "directory/directory.h": "",
            "directory/ldap.h": "",
            "filters/chain.h": '#include "directory/directory.h"\n#include "directory/ldap.h"\n',
        })
        self.assertEqual(rc, 1)
        self.assertEqual(out, "filters/chain.h:2: includes directory/ldap.h "
                              "(folder filters may not depend on folder directory)\n")

    def test_star_row_makes_each_subfolder_its_own_folder(self):
        rc, out, _ = self.check({
            "filters/chain.h": '#include "filters/rbl/rbl.h"\n',
            "filters/rbl/rbl.h": '#include "filters/chain.h"\n#include "filters/ocr/ocr.h"\n',
            "filters/ocr/ocr.h": '#include "filters/ocr/deep/gif.h"\n',
            "filters/ocr/deep/gif.h": "",
        })
        self.assertEqual(rc, 1)
        self.assertEqual(out.splitlines(), [
            "filters/chain.h:1: includes filters/rbl/rbl.h (folder filters may not depend on folder filters/rbl)",
            "filters/rbl/rbl.h:2: includes filters/ocr/ocr.h (folder filters/rbl may not depend on folder filters/ocr)",
        ])

    def test_relative_include_resolves_next_to_the_file(self):
        rc, out, _ = self.check({
            "net/dns.h": "",
            "core/log.h": '#include "../net/dns.h"\n',
        })
        self.assertEqual(out, "core/log.h:1: includes ../net/dns.h (folder core may not depend on folder net)\n")

    def test_generated_header_maps_to_its_folder(self):
        rc, out, _ = self.check({"core/log.h": "", "core/x.cc": '#include "net/generated.h"\n', "net/dns.h": ""})
        self.assertEqual(out, "core/x.cc:1: includes net/generated.h (folder core may not depend on folder net)\n")

    def test_folder_without_row_is_reported_and_unusable(self):
        rc, out, _ = self.check({
            "ldap/users.h": '#include "core/log.h"\n',
            "core/log.h": "",
            "net/dns.h": '#include "ldap/users.h"\n',
        })
        self.assertEqual(rc, 1)
        self.assertEqual(out.splitlines(), [
            "ldap/: holds C++ files (ldap/users.h) but has no row in the layers rule",
            "net/dns.h:1: includes ldap/users.h (folder net may not depend on folder ldap)",
        ])

    def test_build_trees_are_not_scanned(self):
        rc, out, err = self.check({
            "core/log.h": "",
            "build/CMakeCache.txt": "",
            "build/CMakeFiles/CompilerId/id.cpp": '#include "net/dns.h"\n',
        })
        self.assertEqual((rc, out), (0, ""), err)

    def test_list_prints_the_parsed_rule(self):
        make_tree(self.root, RULE, {})
        rc, out, _ = run("--source", self.root, "--list")
        self.assertEqual(rc, 0)
        self.assertIn("filters/*: core filters\n", out)
        self.assertIn("core:      (nothing)\n", out)

    def test_broken_rules_exit_2(self):
        cases = {
            "unknown folder": (RULE + "net2: nowhere\n", "nowhere is in no folder of the rule"),
            "cycle": ("core: net\nnet: core\n", "cycle: core -> net -> core"),
            "cycle through a sub-folder": ("f: f/ocr\nf/*: f\n", "cycle: f -> f/* -> f"),
            "duplicate row": ("core:\ncore:\n", "folder core has two rows"),
            "not a row": ("core net\n", "expected `folder: folders it may use`"),
        }
        for what, (rule, message) in cases.items():
            with self.subTest(what):
                rc, out, err = self.check({"core/log.h": ""}, rule)
                self.assertEqual(rc, 2, err)
                self.assertIn(message, err)
        with open(os.path.join(self.root, "README.md"), "w") as f:
            f.write("no block\n")
        rc, _, err = run("--source", self.root, "--includes-only")
        self.assertEqual(rc, 2)
        self.assertIn("exactly one ```layers block, found 0", err)


LINK_RULE = """\
a:
b: a
c: b
tests: *
"""

CMAKE = """\
cmake_minimum_required(VERSION 3.20)
project(fake LANGUAGES CXX)
add_library(la STATIC a/a.cc)
add_library(lb STATIC b/b.cc)
target_link_libraries(lb PUBLIC la)
add_library(lc STATIC c/c.cc)
target_link_libraries(lc PUBLIC lb)    # allowed, but brings la (c may not use a)
add_library(lc2 STATIC c/c2.cc)
target_link_libraries(lc2 PUBLIC lb
                      la)              # named here too: a direct link, not one through lb
add_library(la2 STATIC a/a2.cc)
target_link_libraries(la2 PRIVATE lc)  # forbidden: a may use nothing
add_library(lbc STATIC b/x.cc c/y.cc)  # two folders in one library
add_executable(t tests/t.cc)
target_link_libraries(t PRIVATE la2 Threads::Threads)
find_package(Threads REQUIRED)
"""


@unittest.skipUnless(shutil.which("cmake"), "needs cmake")
class LinkTest(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="layers-test-")
        self.addCleanup(shutil.rmtree, self.root)
        files = {"CMakeLists.txt": CMAKE}
        for f in ("a/a.cc", "a/a2.cc", "b/b.cc", "b/x.cc", "c/c.cc", "c/c2.cc", "c/y.cc"):
            files[f] = f"int f_{f.replace('/', '_').replace('.', '_')}() {{ return 0; }}\n"
        files["tests/t.cc"] = "int main() {}\n"
        make_tree(self.root, LINK_RULE, files)

    def expected(self):
        return [
            # la2 also gets lb through lc: that hop is the one at fault, reported alone
            "target la2 (folder a) links lc (folder c)",
            "target lbc mixes folders b, c (one library per folder)",
            "target lc (folder c) links la (folder a) through lb",
            "target lc2 (folder c) links la (folder a)",
        ]

    def test_scratch_configure(self):
        rc, out, err = run("--source", self.root)
        self.assertEqual(rc, 1, err)
        self.assertIn("configuring", err)
        self.assertEqual(sorted(out.splitlines()), sorted(self.expected()), err)

    def test_reads_the_reply_of_a_configured_build_tree(self):
        build = os.path.join(self.root, "build")
        query = os.path.join(build, ".cmake", "api", "v1", "query", "client-mxfront")
        os.makedirs(query)
        open(os.path.join(query, "codemodel-v2"), "w").close()
        r = subprocess.run(["cmake", "-S", self.root, "-B", build], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        rc, out, err = run("--source", self.root, "--build", build)
        self.assertEqual(rc, 1, err)
        self.assertNotIn("configuring", err)
        self.assertEqual(sorted(out.splitlines()), sorted(self.expected()), err)


if __name__ == "__main__":
    unittest.main()
