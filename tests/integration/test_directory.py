"""The directory against a real OpenLDAP slapd, driven through the dirquery tool.

Recipients (valid, unknown, disabled, alternate address, case, catch-all), LDAP filter injection,
AUTH (right and wrong password, unknown user, empty password, disabled account), the service bind,
failover between URIs, a stopped slapd (Unavailable, then Found again after a restart without
restarting the querying process), a hung slapd (SIGSTOP: Unavailable within about the timeout) and
the positive/negative cache while the directory hangs. Plus the users-file directory end to end.

dirquery comes from MXFRONT_DIRQUERY (set by ctest); failing that, it is looked for next to
MXFRONT_BIN. A slapd that cannot start fails the tests (never a skip).

Run from the repo root:  MXFRONT_DIRQUERY=build/dirquery python3 -m unittest -v tests/integration/test_directory.py"""
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from slapd_harness import ROOT_DN, ROOT_PW, SUFFIX, Slapd, closed_port, ssha  # noqa: E402

KEEP = os.environ.get("KEEP", "0") == "1"


def dirquery_path():
    path = os.environ.get("MXFRONT_DIRQUERY")
    if not path and os.environ.get("MXFRONT_BIN"):
        path = os.path.join(os.path.dirname(os.environ["MXFRONT_BIN"]), "dirquery")
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(f"dirquery not found ({path!r}): set MXFRONT_DIRQUERY to the built tests/tools/dirquery")
    return path


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(v)  # a JSON string is a valid TOML basic string


class Workspace:
    """A temp dir for config files; removed at cleanup unless KEEP=1."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="mxfront-dirtest.")

    def config(self, **directory):
        """A complete mxfront config whose [directory] section holds `directory`."""
        lines = ['[log]', 'level = "info"', '', '[[listener]]', 'address = "127.0.0.1:2525"', '',
                 '[relay]', 'local_domains = ["example.org"]', '', '[qmqp]', 'servers = ["127.0.0.1:628"]', '',
                 '[directory]']
        lines += [f"{k} = {toml_value(v)}" for k, v in directory.items()]
        fd, path = tempfile.mkstemp(suffix=".toml", dir=self.dir)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def file(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def close(self):
        if not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)


def ldap_options(slapd, **extra):
    opts = dict(type="ldap", uris=[slapd.uri], base_dn=SUFFIX, timeout=2)
    opts.update(extra)
    return opts


def parse_answer(line, kind, subject):
    """'rcpt ADDR Status k=v ... [detail=rest]' -> (status, {k: v, 'detail': rest})."""
    prefix = f"{kind} {subject} "
    if not line.startswith(prefix):
        raise AssertionError(f"unexpected answer {line!r} for {kind} {subject}")
    rest = line[len(prefix):]
    detail = ""
    if " detail=" in rest:
        rest, detail = rest.split(" detail=", 1)
    parts = rest.split(" ")
    fields = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
    fields["detail"] = detail
    return parts[0], fields


class Shell:
    """One long-lived `dirquery CONFIG shell`: same process, connections and cache across questions."""

    def __init__(self, config):
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([dirquery_path(), config, "shell"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, text=True, bufsize=1)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def ask(self, question, timeout=20):
        self.proc.stdin.write(question + "\n")
        self.proc.stdin.flush()
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"dirquery shell gave no answer to {question!r} within {timeout}s") from None
        if line is None:
            raise AssertionError(f"dirquery shell exited ({self.proc.wait()}): {self.log()}")
        return line

    def rcpt(self, address):
        return parse_answer(self.ask(f"rcpt {address}"), "rcpt", address)

    def auth(self, user, password):
        return parse_answer(self.ask(f"auth {user} {password}"), "auth", user)

    def log(self):
        self.stderr.seek(0)
        return self.stderr.read()[-3000:]

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.stderr.close()


class DirectoryTestCase(unittest.TestCase):
    def setUp(self):
        self.ws = Workspace()
        self.addCleanup(self.ws.close)

    def dirquery(self, config, *args, timeout=60):
        out = subprocess.run([dirquery_path(), config, *args], capture_output=True, text=True, timeout=timeout)
        self.assertEqual(out.returncode, 0, f"dirquery {' '.join(args)} failed:\n{out.stderr}")
        return out

    def rcpt(self, config, address):
        out = self.dirquery(config, "rcpt", address)
        return parse_answer(out.stdout.splitlines()[0], "rcpt", address)

    def auth(self, config, user, password):
        out = self.dirquery(config, "auth", user, password)
        return parse_answer(out.stdout.splitlines()[0], "auth", user)

    def shell(self, config):
        sh = Shell(config)
        self.addCleanup(sh.close)
        return sh


class LdapDirectoryTest(DirectoryTestCase):
    """Read-only questions to one shared slapd."""

    @classmethod
    def setUpClass(cls):
        cls.ldap = Slapd()
        cls.addClassCleanup(cls.ldap.close)
        cls.ldap.start()
        cls.ldap.add_user("dave", "davepw", mail="Dave@Example.org", alternates=["d.smith@example.org"])

    def setUp(self):
        super().setUp()
        self.cfg = self.ws.config(**ldap_options(self.ldap))

    # -- recipients -------------------------------------------------------------------------------
    def test_valid_recipients_are_found(self):
        for address in ("alice@example.org", "bob@example.org"):
            status, f = self.rcpt(self.cfg, address)
            self.assertEqual(status, "Found", f)
            self.assertEqual(f["mailbox"], address)

    def test_unknown_recipient_is_not_found(self):
        self.assertEqual(self.rcpt(self.cfg, "nobody@example.org")[0], "NotFound")
        self.assertEqual(self.rcpt(self.cfg, "alice@example.net")[0], "NotFound")

    def test_disabled_account_is_not_deliverable(self):
        self.assertEqual(self.rcpt(self.cfg, "carol@example.org")[0], "Disabled")

    def test_alternate_address_delivers_to_the_primary(self):
        status, f = self.rcpt(self.cfg, "alias-alice@example.org")
        self.assertEqual(status, "Found")
        self.assertEqual(f["mailbox"], "alice@example.org")

    def test_matching_ignores_case(self):
        for address in ("ALICE@EXAMPLE.ORG", "Alias-Alice@Example.Org", "dave@example.org", "D.Smith@EXAMPLE.org"):
            status, f = self.rcpt(self.cfg, address)
            self.assertEqual(status, "Found", address)
        self.assertEqual(self.rcpt(self.cfg, "d.smith@example.org")[1]["mailbox"], "dave@example.org")

    def test_filter_injection_finds_nothing(self):
        for address in ("*)(uid=*@example.org", "*@example.org", "alice)(mail=*@example.org", "*",
                        "alice@example.org)(|(mail=*", "\\2a@example.org", "*)(mail=alice@example.org"):
            status, f = self.rcpt(self.cfg, address)
            self.assertEqual(status, "NotFound", f"{address}: {f}")

    def test_filter_injection_cannot_log_in(self):
        for login in ("*", "*)(uid=*", "alice)(|(uid=*", "ali*"):
            self.assertEqual(self.auth(self.cfg, login, "alicepw")[0], "BadCredentials", login)

    def test_catchall_domain(self):
        cfg = self.ws.config(**ldap_options(self.ldap, catchall_domains=["catchall.example"]))
        status, f = self.rcpt(cfg, "Anyone@CatchAll.Example")
        self.assertEqual(status, "Found")
        self.assertEqual(f["mailbox"], "anyone@catchall.example")
        self.assertEqual(self.rcpt(cfg, "nobody@example.org")[0], "NotFound")  # other domains unchanged
        self.assertEqual(self.rcpt(cfg, "carol@example.org")[0], "Disabled")

    # -- AUTH --------------------------------------------------------------------------------------
    def test_auth_ok_gives_every_address(self):
        for login in ("alice", "alice@example.org", "ALICE"):
            status, f = self.auth(self.cfg, login, "alicepw")
            self.assertEqual(status, "Ok", f"{login}: {f}")
            self.assertEqual(f["addresses"], "alice@example.org,alias-alice@example.org")
        status, f = self.auth(self.cfg, "dave", "davepw")
        self.assertEqual((status, f["addresses"]), ("Ok", "dave@example.org,d.smith@example.org"))

    def test_auth_wrong_password(self):
        out = self.dirquery(self.cfg, "auth", "alice", "S3cret-Wr0ng")
        status, f = parse_answer(out.stdout.splitlines()[0], "auth", "alice")
        self.assertEqual(status, "BadCredentials")
        self.assertIn("(49)", f["detail"])  # invalidCredentials from slapd
        self.assertNotIn("S3cret-Wr0ng", out.stdout + out.stderr)  # never logged

    def test_auth_unknown_user(self):
        self.assertEqual(self.auth(self.cfg, "nobody", "whatever")[0], "BadCredentials")
        self.assertEqual(self.auth(self.cfg, "nobody@example.org", "alicepw")[0], "BadCredentials")

    def test_auth_empty_password(self):
        # An empty simple bind is an "unauthenticated bind" that slapd answers with success.
        self.assertEqual(self.auth(self.cfg, "alice", "")[0], "BadCredentials")

    def test_auth_disabled_account(self):
        self.assertEqual(self.auth(self.cfg, "carol", "carolpw")[0], "Disabled")
        self.assertEqual(self.auth(self.cfg, "carol", "wrong")[0], "BadCredentials")

    # -- connections ---------------------------------------------------------------------------------
    def test_service_bind(self):
        pw = self.ws.file("bindpw", ROOT_PW + "\n")
        cfg = self.ws.config(**ldap_options(self.ldap, bind_dn=ROOT_DN, bind_password_file=pw))
        self.assertEqual(self.rcpt(cfg, "alice@example.org")[0], "Found")
        self.assertEqual(self.auth(cfg, "alice", "alicepw")[0], "Ok")
        wrong = self.ws.file("wrongpw", "not-the-password\n")
        cfg = self.ws.config(**ldap_options(self.ldap, bind_dn=ROOT_DN, bind_password_file=wrong))
        status, f = self.rcpt(cfg, "alice@example.org")
        self.assertEqual(status, "Unavailable", f)  # a failed service bind never means NotFound
        self.assertIn("(49)", f["detail"])

    def test_failover_to_the_second_uri(self):
        dead = f"ldap://127.0.0.1:{closed_port()}"
        cfg = self.ws.config(**ldap_options(self.ldap, uris=[dead, self.ldap.uri]))
        t0 = time.monotonic()
        out = self.dirquery(cfg, "rcpt", "alice@example.org")
        status, f = parse_answer(out.stdout.splitlines()[0], "rcpt", "alice@example.org")
        self.assertEqual(status, "Found")
        self.assertEqual(f["detail"], self.ldap.uri)  # answered by the second URI
        self.assertIn(dead, out.stderr)               # the failed URI is logged
        self.assertLess(time.monotonic() - t0, 5)
        self.assertEqual(self.auth(cfg, "alice", "alicepw")[0], "Ok")

    def test_every_uri_down_is_unavailable(self):
        dead = [f"ldap://127.0.0.1:{closed_port()}", f"ldap://127.0.0.1:{closed_port()}"]
        cfg = self.ws.config(**ldap_options(self.ldap, uris=dead))
        out = self.dirquery(cfg, "rcpt", "alice@example.org")
        status, f = parse_answer(out.stdout.splitlines()[0], "rcpt", "alice@example.org")
        self.assertEqual(status, "Unavailable")
        for uri in dead:
            self.assertIn(uri, f["detail"])
            self.assertIn(uri, out.stderr)  # logged as a warning with the libldap error
        self.assertIn("Can't contact LDAP server", out.stderr)
        self.assertEqual(self.auth(cfg, "alice", "alicepw")[0], "Unavailable")

    # -- the tool itself -------------------------------------------------------------------------------
    def test_repeat_prints_latency_and_the_cache_answers(self):
        out = self.dirquery(self.cfg, "--repeat", "5", "--stats", "rcpt", "bob@example.org")
        lines = out.stdout.splitlines()
        answers = [line for line in lines if line.startswith("rcpt ")]
        self.assertEqual(len(answers), 5)
        for line in answers:
            self.assertRegex(line, r"^rcpt bob@example.org Found mailbox=bob@example.org ms=\d+\.\d{3}")
        self.assertTrue(any(line.startswith("latency rcpt bob@example.org n=5 ") for line in lines), lines)
        stats = [line for line in lines if line.startswith("stats ")]
        self.assertEqual(len(stats), 1)
        self.assertIn(" cache_hits=4 ", stats[0])

    def test_anonymous_users_cannot_read_passwords(self):
        self.assertNotIn("userPassword", self.ldap.search("(uid=alice)", "*", "userPassword"))
        own = self.ldap.search("(uid=alice)", "userPassword", bind=(f"uid=alice,ou=people,{SUFFIX}", "alicepw"))
        self.assertIn("userPassword", own)


class LdapOutageTest(DirectoryTestCase):
    """Each test stops or hangs its own slapd."""

    def setUp(self):
        super().setUp()
        self.ldap = Slapd()
        self.addCleanup(self.ldap.close)
        self.ldap.start()

    def test_stopped_directory_is_unavailable_then_found_after_restart(self):
        sh = self.shell(self.ws.config(**ldap_options(self.ldap, cache_size=0, timeout=1)))
        self.assertEqual(sh.rcpt("alice@example.org")[0], "Found")
        self.ldap.stop()
        for _ in range(3):
            status, f = sh.rcpt("alice@example.org")
            self.assertEqual(status, "Unavailable", f)
            self.assertIn(self.ldap.uri, f["detail"])
        self.assertEqual(sh.auth("alice", "alicepw")[0], "Unavailable")
        self.ldap.start()  # same port, same data; the dirquery process is still the same one
        for _ in range(3):  # every pool thread reconnects, whichever runs the question
            self.assertEqual(sh.rcpt("alice@example.org")[0], "Found")
        self.assertEqual(sh.rcpt("nobody@example.org")[0], "NotFound")
        self.assertEqual(sh.auth("alice", "alicepw")[0], "Ok")
        self.assertIsNone(sh.proc.poll())

    def test_hung_directory_is_unavailable_within_the_timeout(self):
        timeout = 1.0
        cfg = self.ws.config(**ldap_options(self.ldap, cache_size=0, timeout=timeout))
        sh = self.shell(cfg)
        self.assertEqual(sh.rcpt("alice@example.org")[0], "Found")  # a kept connection
        self.ldap.pause()
        t0 = time.monotonic()
        status, f = sh.rcpt("alice@example.org")
        took = time.monotonic() - t0
        self.assertEqual(status, "Unavailable", f)
        self.assertIn("Timed out", f["detail"])
        self.assertGreater(took, timeout * 0.8)
        self.assertLess(took, timeout * 2 + 0.5)
        t0 = time.monotonic()  # a new process: connect succeeds (kernel backlog), the search times out
        status, f = self.rcpt(cfg, "bob@example.org")
        self.assertEqual(status, "Unavailable", f)
        self.assertLess(time.monotonic() - t0, timeout * 2 + 1)
        self.assertEqual(sh.auth("alice", "alicepw")[0], "Unavailable")
        self.ldap.resume()
        self.assertEqual(sh.rcpt("alice@example.org")[0], "Found")

    def test_cache_answers_while_the_directory_hangs_until_the_ttl(self):
        ttl = 2.0
        sh = self.shell(self.ws.config(**ldap_options(self.ldap, timeout=0.5, positive_ttl=ttl, negative_ttl=ttl)))
        self.assertEqual(sh.rcpt("alice@example.org")[0], "Found")
        self.assertEqual(sh.rcpt("nobody@example.org")[0], "NotFound")
        stored = time.monotonic()  # both answers were cached before this (under load, well before)
        self.ldap.pause()
        t0 = time.monotonic()
        status, f = sh.rcpt("alice@example.org")  # positive cache
        self.assertEqual(status, "Found")
        self.assertTrue(f["detail"].startswith("cached: "), f)
        self.assertEqual(sh.rcpt("ALICE@example.org")[0], "Found")  # same key, any case
        self.assertEqual(sh.rcpt("nobody@example.org")[0], "NotFound")  # negative cache
        self.assertLess(time.monotonic() - t0, 0.4)  # no directory round trip was waited for
        self.assertEqual(sh.rcpt("bob@example.org")[0], "Unavailable")  # not cached: asks, times out
        self.assertEqual(sh.auth("alice", "alicepw")[0], "Unavailable")  # AUTH is never cached
        time.sleep(max(0.0, stored + ttl + 0.3 - time.monotonic()))
        status, f = sh.rcpt("alice@example.org")
        self.assertEqual(status, "Unavailable", f)  # expired: asked again, and the directory hangs
        self.ldap.resume()
        self.assertEqual(sh.rcpt("alice@example.org")[0], "Found")


class UsersFileTest(DirectoryTestCase):
    """The embedded users-file directory, end to end through the config loader."""

    def test_users_file(self):
        users = self.ws.file("users", "# test\n"
                             f"alice@example.org {ssha('alicepw')} active alias-alice@example.org\n"
                             "carol@example.org - disabled\n")
        cfg = self.ws.config(type="file", users_file=users, catchall_domains=["catchall.example"])
        self.assertEqual(self.rcpt(cfg, "Alias-Alice@example.org")[1]["mailbox"], "alice@example.org")
        self.assertEqual(self.rcpt(cfg, "carol@example.org")[0], "Disabled")
        self.assertEqual(self.rcpt(cfg, "nobody@example.org")[0], "NotFound")
        self.assertEqual(self.rcpt(cfg, "x@catchall.example")[0], "Found")
        status, f = self.auth(cfg, "alias-alice@example.org", "alicepw")
        self.assertEqual((status, f["addresses"]), ("Ok", "alice@example.org,alias-alice@example.org"))
        self.assertEqual(self.auth(cfg, "alice@example.org", "wrong")[0], "BadCredentials")

    def test_users_file_errors_stop_the_tool(self):
        users = self.ws.file("users", "alice@example.org {SSHA}broken\n")
        out = subprocess.run([dirquery_path(), self.ws.config(type="file", users_file=users), "rcpt", "a@example.org"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2)
        self.assertIn(f"{users}:1: {{SSHA}} value is not base64", out.stderr)


if __name__ == "__main__":
    unittest.main()
