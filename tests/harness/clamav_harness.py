"""ClamAV test material (Python 3 standard library only): a self-made signature database and mails.

ClamAV ships no built-in signatures, so tests build their own DB in a temp dir:
  * harness.hdb  md5:size:Harness.Test.EICAR.MD5             (whole-file hash of EICAR)
  * harness.ndb  Harness.Test.EICAR.Body:0:*:<hex>            (EICAR body signature, any offset)
  * harness.hsb  sha256:size:Harness.Test.ClamExe.SHA256      (clamav-testfiles' clam.exe)
libclamav reports signatures from unsigned files with ".UNOFFICIAL" appended: compare prefixes.
add_ndb() drops a new body signature in later (written aside, then renamed in whole), e.g. for
reload tests. EICAR is assembled from two halves so that this file is not flagged by scanners.
"""
import base64
import hashlib
import os
import shutil
import tempfile
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

TESTFILES = Path("/usr/share/clamav-testfiles")
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SIG = "Harness.Test.EICAR"
CLAMEXE_SIG = "Harness.Test.ClamExe"


class SignatureDb:
    """A signature directory under /tmp (world-readable), removed by cleanup()/__exit__."""

    def __init__(self, with_clam_exe=True):
        self.dir = tempfile.mkdtemp(prefix="mxtest-clamav.", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self._write("harness.hdb", f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:{EICAR_SIG}.MD5\n")
        self._write("harness.ndb", f"{EICAR_SIG}.Body:0:*:{EICAR.hex()}\n")
        exe = TESTFILES / "clam.exe"
        if with_clam_exe and exe.exists():
            data = exe.read_bytes()
            self._write("harness.hsb", f"{hashlib.sha256(data).hexdigest()}:{len(data)}:{CLAMEXE_SIG}.SHA256\n")

    def _write(self, name, text):
        """Written under a dot-name first, then renamed: a reader never sees half a file."""
        tmp = Path(self.dir) / f".{name}.part"
        tmp.write_text(text)
        os.rename(tmp, Path(self.dir) / name)

    def add_ndb(self, filename, sig_name, marker: bytes):
        """A new .ndb file with one body signature matching `marker` anywhere."""
        self._write(filename, f"{sig_name}:0:*:{marker.hex()}\n")

    def cleanup(self):
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


def mail_with_attachments(subject, attachments, text="see attachments\n", sender="s@example.net",
                          to="bob@example.org") -> bytes:
    """A MIME mail (CRLF line ends) with the given attachments: a list of
    (filename, bytes, "maintype/subtype"); binary parts are base64-encoded."""
    m = EmailMessage(policy=SMTP)
    m["From"] = sender
    m["To"] = to
    m["Subject"] = subject
    m["Message-ID"] = f"<{subject}@example.net>"
    m["Date"] = "Mon, 01 Jan 2024 00:00:00 +0000"
    m.set_content(text)
    for name, data, ctype in attachments:
        maintype, subtype = ctype.split("/", 1)
        if maintype == "text":
            m.add_attachment(data.decode(), subtype=subtype, filename=name)
        else:
            m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return m.as_bytes()


def eicar_mail(subject) -> bytes:
    body = mail_with_attachments(subject, [("eicar.com", EICAR, "application/octet-stream")])
    assert EICAR not in body and base64.b64encode(EICAR) in body.replace(b"\r\n", b"")
    return body


def small_pdf(text="hello") -> bytes:
    """A tiny valid one-page PDF (not a virus)."""
    content = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length " + str(len(content)).encode() + b" >>\nstream\n" + content + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out = b"%PDF-1.4\n"
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + o + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def small_zip(files) -> bytes:
    """A zip archive in memory: files = {name: bytes}."""
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()
