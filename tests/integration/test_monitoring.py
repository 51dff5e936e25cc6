"""Monitoring an admin can install, checked against a REAL scrape: mxfront relaying to a real
Postfix qmqpd (and a second, dead mailbox server) with the rules, relay_control, clamav and ocr
filters active gets real traffic (relayed, refused by a rule, a virus, an image, a relay attempt);
then its /metrics must pass `promtool check metrics` without a single complaint, every family must
be described, label values must be escaped (the clamav dependency is named by a signature
directory whose path holds a double quote and a backslash), the alert rules in deploy/monitoring/
must pass `promtool check rules` and their unit tests (`promtool test rules`), and every metric
the rules and the Grafana dashboard use must exist on that scrape.

promtool comes from Debian's prometheus package (scripts/install-deps.sh).
Run from the repo root:  python3 -m unittest -v tests/integration/test_monitoring.py"""
import json
import os
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

try:
    import yaml
except ImportError:  # python3-yaml (scripts/install-deps.sh) is the system Python's
    sys.path.append("/usr/lib/python3/dist-packages")
    import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "harness"))
from mxharness import (Mxfront, PostfixQmqp, free_port, http_get, remove_dir, smtp_send,  # noqa: E402
                       unique_marker)
from clamav_harness import SignatureDb, eicar_mail, mail_with_attachments  # noqa: E402
from ocr_harness import OcrImages, image_mail, write_words_file  # noqa: E402

REPO = Path(HERE).parent.parent
MONITORING = REPO / "deploy" / "monitoring"
RULES = MONITORING / "mxfront.rules.yml"
RULE_TESTS = MONITORING / "mxfront.rules.test.yml"
DASHBOARD = MONITORING / "mxfront-dashboard.json"
UNDESCRIBED = "Undescribed:"  # ops::kUndescribed: the HELP of a family nobody described
# Names a rule may use that no mxfront instance exports: Prometheus' own `up`.
NOT_ON_METRICS = {"up"}

SENDER = "s@example.net"
RCPT = "bob@example.org"
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
                "offset", "bool", "inf", "nan", "atan2"}


def relay_attempt(port, message):
    """A message to a foreign domain: (code, text) of the RCPT refusal."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=30) as c:
        try:
            c.sendmail(SENDER, ["someone@elsewhere.test"], message)
            return 250, ""
        except smtplib.SMTPRecipientsRefused as e:
            code, text = e.recipients["someone@elsewhere.test"]
            return code, text.decode(errors="replace")


def promtool(*args, stdin=None):
    exe = shutil.which("promtool")
    if not exe:
        raise AssertionError("promtool not found: scripts/install-deps.sh installs Debian's prometheus package")
    r = subprocess.run([exe, *map(str, args)], input=stdin, capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def metric_names(expr):
    """The metric names a PromQL expression selects: identifiers that are not functions,
    aggregations, keywords, label names (inside {...} or by/without/on/ignoring (...)) or
    durations."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"\{[^}]*\}", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e):
        if e[m.end():].lstrip().startswith("(") or m.group(0).lower() in PROMQL_WORDS:
            continue
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue  # the exponent or unit of a number
        names.add(m.group(0))
    return names


def exported_names(text):
    """Every series name a scrape can be queried by: samples, and each TYPE'd family (a family
    with no sample yet still exists; a histogram is queried by its _bucket, _sum and _count)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.update([name + s for s in ("_bucket", "_sum", "_count")] if kind == "histogram" else [name])
        elif line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def dashboard_queries(dash):
    """(where, PromQL) of every panel target (rows included) and every query variable."""
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f"panel {p.get('title')!r} {t.get('refId')}", t["expr"]))
            walk(p.get("panels", []))
    walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query" and q:
            m = re.fullmatch(r"\s*label_values\((.*),\s*\w+\)\s*", q)
            out.append((f"variable {v['name']}", m.group(1) if m else q))
    return out


def as_promql(expr):
    """A dashboard expression with Grafana's variables replaced, for promtool."""
    return (expr.replace("$__rate_interval", "5m").replace("$__interval", "1m")
            .replace("$job", ".*").replace("$instance", ".*"))


class MonitoringTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="mxtest-monitoring.", dir="/tmp")
        os.chmod(cls.work, 0o755)
        cls.addClassCleanup(remove_dir, cls.work, "monitoring test")
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        # The clamav dependency is named by its directory: a quote and a backslash in the path
        # must reach /metrics escaped.
        with SignatureDb() as db:
            cls.sigdir = os.path.join(cls.work, 'sigs "quoted" back\\slash')
            shutil.copytree(db.dir, cls.sigdir)
        os.chmod(cls.sigdir, 0o755)
        words = write_words_file(cls.work, ["cheap viagra"])
        cls.images = OcrImages()
        cls.addClassCleanup(cls.images.cleanup)
        cls.dead = f"127.0.0.1:{free_port()}"  # a second mailbox server nobody listens on
        cls.admin = free_port()
        cls.mx = Mxfront([cls.pf.address, cls.dead], config={
            "admin": {"address": f"127.0.0.1:{cls.admin}", "check_interval": 0.2, "check_fall": 2, "check_rise": 1},
            "qmqp": {"probe_interval": 0.2},
            "profile.mx": {"filters": ["rules", "relay_control", "clamav", "ocr"], "reject_score": 20, "tag_score": 5},
            "rules.rule": [{"name": "pills", "kind": "body", "pattern": "(?i)cheap pills", "action": "reject"}],
            "clamav": {"database_dir": cls.sigdir},
            "ocr": {"words_file": str(words)},
        })
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start(timeout=60)

        def msg(marker, body="nothing special\r\n"):
            return (f"From: <{SENDER}>\r\nTo: <{RCPT}>\r\nSubject: {marker}\r\n"
                    f"Message-ID: <{marker}@example.net>\r\n\r\n{body}").encode()
        clean = unique_marker("mon-clean")
        sent = [
            (smtp_send(cls.mx.port, SENDER, [RCPT], msg(clean)), 250),
            (smtp_send(cls.mx.port, SENDER, [RCPT], msg(unique_marker("mon-rule"), "cheap pills here\r\n")), 554),
            (smtp_send(cls.mx.port, SENDER, [RCPT], eicar_mail(unique_marker("mon-virus"))), 554),
            (smtp_send(cls.mx.port, SENDER, [RCPT], image_mail([("pixel.gif", cls.images.tiny_gif())], SENDER, RCPT,
                                                                unique_marker("mon-image"))), 250),
            (smtp_send(cls.mx.port, SENDER, [RCPT], mail_with_attachments(unique_marker("mon-attach"),
                                                                          [("a.txt", b"hello\n", "text/plain")])), 250),
            (relay_attempt(cls.mx.port, msg(unique_marker("mon-relay"))), 554),
        ]
        cls.sent = sent
        cls.delivered = cls.pf.deliveries(20, 3)
        # Wait for the background checks to judge both mailbox servers and the clamav directory.
        deadline = time.monotonic() + 20
        while True:
            cls.metrics = http_get(cls.admin, "/metrics")[1]
            if f'mxfront_dependency_up{{kind="qmqp",name="{cls.dead}"}} 0\n' in cls.metrics or time.monotonic() > deadline:
                break
            time.sleep(0.2)

    def diag(self):
        return f"\n--- mxfront log ---\n{self.mx.log()[-3000:]}"

    def test_the_traffic_went_through(self):
        self.assertEqual([code for (code, _text), _ in self.sent], [want for _, want in self.sent],
                         f"{self.sent}{self.diag()}")
        self.assertEqual(len(self.delivered), 3, self.diag())
        print("\n--- scrape ---\n" + self.metrics if os.environ.get("MX_SHOW_SCRAPE") else "", end="")

    def test_promtool_check_metrics_finds_nothing_to_complain_about(self):
        rc, out = promtool("check", "metrics", stdin=self.metrics)
        self.assertEqual((rc, out.strip()), (0, ""), f"promtool check metrics:\n{out}\n--- scrape ---\n{self.metrics}")

    def test_every_family_has_help_and_type_and_the_filters_families_have_samples(self):
        helped = set(re.findall(r"^# HELP (\S+) \S", self.metrics, re.M))
        typed = set(re.findall(r"^# TYPE (\S+) ", self.metrics, re.M))
        self.assertEqual(helped, typed)
        self.assertNotIn(UNDESCRIBED, self.metrics, "a family nobody described (core::describe)")
        m = self.metrics
        self.assertIn('mxfront_messages_total{outcome="relayed"} 3\n', m)
        self.assertIn('mxfront_messages_total{outcome="rejected"} 2\n', m)
        self.assertIn('mxfront_connections_total{outcome="accepted"} 6\n', m)
        self.assertIn('mxfront_recipients_rejected_total 1\n', m)
        self.assertIn('mxfront_filter_verdicts_total{filter="clamav",outcome="reject"} 1\n', m)
        self.assertIn('mxfront_filter_verdicts_total{filter="rules",outcome="reject"} 1\n', m)
        self.assertIn(f'mxfront_qmqp_answers_total{{server="{self.pf.address}",answer="K"}} 3\n', m)
        self.assertRegex(m, r'(?m)^mxfront_ocr_images_total\{outcome="\w+"\} [1-9]')
        for f in ("rules", "relay_control", "clamav", "ocr"):
            self.assertRegex(m, rf'(?m)^mxfront_filter_duration_seconds_count\{{filter="{f}"\}} [1-9]')
            self.assertIn(f'mxfront_filter_duration_seconds_bucket{{filter="{f}",le="120"}} ', m)
            self.assertIn(f'mxfront_filter_duration_seconds_bucket{{filter="{f}",le="300"}} ', m)
        self.assertIn(f'mxfront_dependency_up{{kind="qmqp",name="{self.dead}"}} 0\n', m)

    def test_label_values_are_escaped_on_a_real_scrape(self):
        escaped = self.sigdir.replace("\\", "\\\\").replace('"', '\\"')
        self.assertIn(f'mxfront_dependency_up{{kind="clamav",name="{escaped}"}} ', self.metrics)

    def test_alert_rules_pass_promtool_check_and_their_unit_tests(self):
        rc, out = promtool("check", "rules", RULES)
        self.assertEqual(rc, 0, out)
        self.assertIn("SUCCESS", out)
        rc, out = promtool("test", "rules", RULE_TESTS)
        self.assertEqual(rc, 0, out)

    def test_alert_rules_use_only_metrics_on_the_scrape(self):
        rules = yaml.safe_load(RULES.read_text())
        exported = exported_names(self.metrics)
        alerts = set()
        for group in rules["groups"]:
            for rule in group["rules"]:
                alerts.add(rule.get("alert"))
                used = metric_names(rule["expr"])
                self.assertTrue(used, rule["expr"])
                self.assertEqual(used - exported - NOT_ON_METRICS, set(), f"{rule.get('alert')}: {rule['expr']}")
        for wanted in ("MxfrontInstanceDown", "MxfrontNotReady", "MxfrontDependencyDown", "MxfrontTempfailRatioHigh",
                       "MxfrontWorkerQueueSaturated", "MxfrontEventLoopLag", "MxfrontQmqpBreakerOpen"):
            self.assertIn(wanted, alerts)

    def test_dashboard_is_valid_json_whose_queries_parse_and_use_only_metrics_on_the_scrape(self):
        dash = json.loads(DASHBOARD.read_text())
        queries = dashboard_queries(dash)
        self.assertGreater(len(queries), 20)
        exported = exported_names(self.metrics)
        used_everywhere = set()
        for where, expr in queries:
            used = metric_names(expr)
            self.assertTrue(used, f"{where}: no metric found in {expr}")
            self.assertEqual(used - exported, set(), f"{where}: {expr}")
            used_everywhere |= used
        for wanted in ("mxfront_messages_total", "mxfront_filter_verdicts_total", "mxfront_dependency_up",
                       "mxfront_worker_queue_depth", "mxfront_io_loop_lag_seconds",
                       "mxfront_filter_duration_seconds_bucket", "mxfront_ocr_images_total"):
            self.assertIn(wanted, used_everywhere)
        # Each expression is valid PromQL: promtool parses them as recording rules.
        rules = {"groups": [{"name": "dashboard", "rules": [
            {"record": f"dashboard:q{i}", "expr": as_promql(e)} for i, (_, e) in enumerate(queries)]}]}
        path = Path(self.work) / "dashboard-queries.yml"
        path.write_text(yaml.safe_dump(rules))
        rc, out = promtool("check", "rules", path)
        self.assertEqual(rc, 0, out)

    def test_metric_name_extraction(self):
        self.assertEqual(metric_names('sum by (outcome) (rate(mxfront_messages_total{job=~"$job",outcome="x"}[5m]))'),
                         {"mxfront_messages_total"})
        self.assertEqual(metric_names("histogram_quantile(0.95, sum by (le, server) (rate(a_bucket[5m]))) / b > 1e-3"),
                         {"a_bucket", "b"})
        self.assertEqual(metric_names("up == 0 and on(instance) mxfront_draining == 0"), {"up", "mxfront_draining"})


if __name__ == "__main__":
    unittest.main()
