"""SMTP smuggling (CVE-2023-51764 family): any bare CR or LF, in commands or in message data,
gets `554 5.5.2` and the connection is closed; neither the carrier message nor a smuggled second
message is relayed. Every case runs twice: everything in one write (pipelined), and split into
separate writes around the bad line ending. Downstream is a real Postfix qmqpd -> Maildir.

Run from the repo root:  python3 -m unittest -v tests/integration/test_smuggling.py"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import PostfixMxfrontCase, smtp_raw, unique_marker  # noqa: E402

ENVELOPE = [b"EHLO client.test\r\n", b"MAIL FROM:<carrier@example.net>\r\n",
            b"RCPT TO:<bob@example.org>\r\n", b"DATA\r\n"]


def smuggled(marker):
    """A complete second transaction, as a smuggler hides it inside the first message's data."""
    return (b"MAIL FROM:<smuggler@example.net>\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n"
            b"From: <admin@example.org>\r\nSubject: smuggled " + marker + b"\r\n\r\n"
            b"smuggled " + marker + b"\r\n.\r\nQUIT\r\n")


# name -> (bytes before the bad sequence, the bad sequence, bytes after)
def data_case(seq):
    def build(marker):
        before = ENVELOPE + [b"Subject: carrier " + marker + b"\r\n\r\ncarrier body " + marker]
        return before, seq, smuggled(marker)
    return build


def data_inside_case(seq):
    def build(marker):
        before = ENVELOPE + [b"Subject: carrier " + marker + b"\r\n\r\nline one"]
        return before, seq, b"line two " + marker + b"\r\n.\r\nQUIT\r\n"
    return build


def command_case(seq_cmd):
    def build(marker):
        after = (b"MAIL FROM:<carrier@example.net>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n"
                 b"Subject: after bad command " + marker + b"\r\n\r\n" + marker + b"\r\n.\r\nQUIT\r\n")
        return [b"EHLO client.test\r\n", b"NOOP"], seq_cmd, after
    return build


CASES = {
    "end_of_data_lf_dot_lf": data_case(b"\n.\n"),
    "end_of_data_lf_dot_crlf": data_case(b"\n.\r\n"),
    "end_of_data_crlf_dot_lf": data_case(b"\r\n.\n"),
    "end_of_data_cr_dot_crlf": data_case(b"\r.\r\n"),
    "end_of_data_crlf_dot_cr": data_case(b"\r\n.\r"),
    "end_of_data_cr_dot_cr": data_case(b"\r.\r"),
    "end_of_data_lf_dot_cr": data_case(b"\n.\r"),
    "bare_lf_inside_data": data_inside_case(b"\n"),
    "bare_cr_inside_data": data_inside_case(b"\r"),
    "bare_lf_ending_command": command_case(b"\n"),
    "bare_cr_inside_command": command_case(b"\rMAIL FROM:<x@example.net>\r\n"),
}


class SmugglingTest(PostfixMxfrontCase):

    def run_case(self, build, split):
        marker = unique_marker("smuggle").encode()
        before, bad, after = build(marker)
        if split:
            # each command/data piece in its own write, the bad sequence byte by byte
            chunks = before + [bytes([b]) for b in bad] + [after]
            r = smtp_raw(self.mx.port, chunks, delay=0.05, timeout=5)
        else:
            r = smtp_raw(self.mx.port, [b"".join(before) + bad + after], timeout=5)
        replies = r.replies()
        self.assertTrue(replies, f"no reply at all: {r}")
        last = replies[-1]
        self.assertTrue(last.startswith(b"554 5.5.2"), f"last reply is not 554 5.5.2: {r}{self.diag()}")
        self.assertFalse(any(x.startswith(b"250 2.0.0 Ok:") for x in replies),
                         f"a message was accepted: {r}")
        self.assertTrue(r.closed, f"connection not closed by the server: {r}")
        sid = self.mx.session_id(r.local_port)
        self.assertIsNotNone(sid, "no connect log line for this session")
        self.assertEqual(self.mx.disconnect_reason(sid), "violation", self.diag())
        # neither the carrier nor the smuggled message may reach a mailbox
        self.assertEqual(self.pf.deliveries(1.0, None, match=marker), [],
                         f"delivered!{self.diag()}\n{self.pf.log()[-1500:]}")

    def test_proper_crlf_dot_crlf_is_delivered_pipelined(self):
        self._control(split=False)

    def test_proper_crlf_dot_crlf_is_delivered_split(self):
        self._control(split=True)

    def _control(self, split):
        marker = unique_marker("control").encode()
        body = b"Subject: control " + marker + b"\r\n\r\nline\r\n..dot-stuffed\r\n"
        chunks = ENVELOPE + [body, b".\r\n", b"QUIT\r\n"]
        if split:
            r = smtp_raw(self.mx.port, chunks, delay=0.05, timeout=5)
        else:
            r = smtp_raw(self.mx.port, [b"".join(chunks)], timeout=5)
        self.assertEqual(r.codes(), [220, 250, 250, 250, 354, 250, 221], f"{r}{self.diag()}")
        self.assertTrue(r.replies()[5].startswith(b"250 2.0.0 Ok:"), r)
        self.assertTrue(r.closed)
        ds = self.pf.deliveries(10, 1, match=marker)
        self.assertEqual([d.recipient for d in ds], ["bob@example.org"])
        self.assertIn(b"\nline\n.dot-stuffed\n", ds[0].data)


def _make(build, split):
    def test(self):
        self.run_case(build, split)
    return test


for _name, _build in CASES.items():
    for _split in (False, True):
        _mode = "split" if _split else "pipelined"
        _t = _make(_build, _split)
        _t.__name__ = f"test_{_name}_{_mode}_gets_554_close_and_nothing_delivered"
        _t.__doc__ = f"{_name} ({_mode}): 554 5.5.2, connection closed, nothing delivered"
        setattr(SmugglingTest, _t.__name__, _t)


if __name__ == "__main__":
    unittest.main(verbosity=2)
