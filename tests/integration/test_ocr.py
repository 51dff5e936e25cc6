"""The ocr filter end to end: smtplib -> mxfront (profile mx: relay_control, ocr; Tesseract + Leptonica
in-process) -> REAL Postfix qmqpd -> Maildir, with images rendered by ImageMagick (ocr_harness.py).

Covers the issue's "done means": image-only spam whose words are in a picture (PNG, JPEG with colour
text, a noisy rotated copy) or spread across animated GIF frames, or in a PDF (its text layer, or a page that is only a picture), is
refused during the SMTP session;
clean images and photos pass; a weaker hit is tagged (X-Spam-Report names the words); a declared type
that lies is scored; bombs, corrupt images, tracking pixels and too many images are skipped and
counted; the message budget bounds the time spent; the same image sent 50 times is read once (the
cache); the submission profile does not run OCR.

Run from the repo root:  python3 -m unittest -v tests/integration/test_ocr.py"""
import os
import re
import smtplib
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "harness"))
from mxharness import (Mxfront, PostfixMxfrontCase, PostfixQmqp, free_port, http_get, remove_dir,  # noqa: E402
                       smtp_send, unique_marker)
from ocr_harness import OcrImages, image_mail, write_words_file  # noqa: E402
from tls_harness import TestPki, users_file  # noqa: E402

SENDER = "s@example.net"
RCPT = "bob@example.org"
# score = 3 (first unit of weight) + 1 per further unit, capped at 10; refused at 5 by ocr itself.
WORDS = [("cheap viagra", 2), "buy now", "online pharmacy", "casino", "rolex replica"]
SPAM_TEXT = "CHEAP VIAGRA BUY NOW"


def ocr_settings(words_file, **extra):
    s = {"words_file": str(words_file), "reject_score": 5, "mismatch_score": 2.5, "budget": 20, "image_timeout": 5}
    s.update(extra)
    return s


def send(port, msg: bytes):
    """One message in its own session: (code, text) of the reply (250 on success)."""
    return smtp_send(port, SENDER, [RCPT], msg, timeout=60)


def image_counts(admin_port):
    """mxfront_ocr_images_total by outcome, from /metrics."""
    _, body = http_get(admin_port, "/metrics")
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r'^mxfront_ocr_images_total\{outcome="([a-z_]+)"\} (\d+)$', body, re.M)}


class OcrTest(PostfixMxfrontCase):
    """One Postfix and one mxfront (mx profile with ocr, admin HTTP for the counters) for the class."""

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="mxtest-ocr.")
        cls.addClassCleanup(remove_dir, cls.work, "ocr test")
        cls.images = OcrImages()
        cls.addClassCleanup(cls.images.cleanup)
        cls.words = write_words_file(cls.work, WORDS)
        cls.admin_port = free_port()
        cls.mx_config = {
            "profile.mx": {"filters": ["relay_control", "ocr"], "reject_score": 20, "tag_score": 2},
            "ocr": ocr_settings(cls.words),
            "workers": {"threads": 2},
            "admin": {"address": f"127.0.0.1:{cls.admin_port}"},
        }
        super().setUpClass()

    def mail(self, images, marker, **kw):
        return image_mail(images, SENDER, RCPT, f"offer {marker}", **kw)

    def assert_refused(self, images, what, **kw):
        marker = unique_marker("spam")
        code, text = send(self.mx.port, self.mail(images, marker, **kw))
        self.assertEqual(code, 554, f"{what} must be refused{self.diag()}")
        self.assertIn("5.7.1", text)
        self.assertRegex(text.lower(), r"cheap viagra")
        self.assertEqual(self.pf.deliveries(0.5, None, match=marker.encode()), [], f"{what} was relayed")
        return text

    def assert_relayed(self, images, what, **kw):
        marker = unique_marker("clean")
        code, text = send(self.mx.port, self.mail(images, marker, **kw))
        self.assertEqual(code, 250, f"{what} must be relayed, got {code} {text}{self.diag()}")
        ds = self.pf.deliveries(10, 1, match=marker.encode())
        self.assertEqual(len(ds), 1, f"{what}: expected one delivery{self.diag()}")
        return ds[0].data

    # -- spam in pictures is refused during the session ------------------------------------------
    def test_png_spam_is_refused_and_the_words_are_logged(self):
        self.assert_refused([("offer.png", self.images.text_png(SPAM_TEXT))], "a PNG with spam words")
        self.assertTrue(self.mx.wait_log(r"ocr id=\S+ images=1 read=1 .*words=\[cheap viagra~\"cheap viagra\" "
                                         r"buy now~\"buy now\"\]", 5), self.diag())

    def test_jpeg_with_coloured_text_is_refused(self):
        self.assert_refused([("offer.jpg", self.images.text_jpeg(SPAM_TEXT))], "a red-on-yellow JPEG")

    def test_noisy_rotated_png_is_refused(self):
        self.assert_refused([("offer.png", self.images.noisy_rotated_png(SPAM_TEXT))], "a noisy, rotated PNG")

    def test_animated_gif_with_cumulative_frames_is_refused(self):
        gif = self.images.gif_cumulative(["CHEAP", "VIAGRA", "BUY NOW"])
        self.assert_refused([("anim.gif", gif)], "an optimised cumulative GIF")

    def test_animated_gif_with_one_word_per_frame_is_refused(self):
        gif = self.images.gif_split(["CHEAP", "VIAGRA", "BUY NOW"])
        self.assert_refused([("anim.gif", gif)], "a GIF with the words split across frames")

    def test_image_declared_as_octet_stream_is_still_read(self):
        self.assert_refused([("x.bin", self.images.text_png(SPAM_TEXT))], "an image declared as octet-stream",
                            declared_types=["application/octet-stream"])

    # -- PDF attachments: the text layer, and pictures of text-less pages -------------------------
    def test_pdf_with_spam_in_its_text_layer_is_refused(self):
        self.assert_refused([("offer.pdf", self.images.text_pdf(SPAM_TEXT))], "a PDF whose text layer is spam")
        self.assertTrue(self.mx.wait_log(r"ocr id=\S+ images=0 read=0 .* pdfs=1 .*words=\[cheap viagra", 5), self.diag())

    def test_image_only_pdf_is_rendered_and_read(self):
        self.assert_refused([("scan.pdf", self.images.image_pdf(SPAM_TEXT))], "an image-only PDF")
        self.assertTrue(self.mx.wait_log(r"ocr id=\S+ images=1 read=1 .* pdfs=1 .*words=\[cheap viagra", 5), self.diag())

    def test_clean_pdf_passes(self):
        data = self.assert_relayed([("minutes.pdf", self.images.text_pdf("MINUTES OF THE BOARD MEETING"))],
                                   "a clean PDF")
        self.assertNotIn(b"X-Spam-", data)

    # -- weaker hits are tagged, clean images pass ---------------------------------------------
    def test_one_word_is_tagged_with_the_word_in_the_report(self):
        data = self.assert_relayed([("c.png", self.images.text_png("PLAY CASINO"))], "a one-word image")
        self.assertRegex(data, rb"X-Spam-Score: 3")
        self.assertRegex(data, rb"X-Spam-Report:.*OCR_WORDS=3:casino")

    def test_clean_text_image_and_photo_pass_untagged(self):
        data = self.assert_relayed([("agenda.png", self.images.text_png("MEETING AGENDA MONDAY")),
                                    ("photo.png", self.images.photo_png())], "a clean image and a photo",
                                   text="see attached\n")
        self.assertNotIn(b"X-Spam-", data)

    def test_a_declared_type_that_lies_is_scored(self):
        data = self.assert_relayed([("a.png", self.images.text_jpeg("QUARTERLY REPORT"))], "a JPEG declared PNG",
                                   declared_types=["image/png"])
        self.assertRegex(data, rb"X-Spam-Report:.*OCR_TYPE_MISMATCH=2.5")

    # -- guards ----------------------------------------------------------------------------------
    def test_bomb_corrupt_and_tracking_pixels_are_skipped_and_counted(self):
        before = image_counts(self.admin_port)
        images = [("bomb.png", self.images.bomb_png()), ("bad.png", self.images.corrupt_png())]
        images += [(f"t{i}.gif", self.images.tiny_gif()) for i in range(100)]
        self.assert_relayed(images, "a bomb, a corrupt image and 100 tracking pixels")
        after = image_counts(self.admin_port)
        self.assertEqual(after.get("too_large", 0) - before.get("too_large", 0), 1, after)
        self.assertEqual(after.get("corrupt", 0) - before.get("corrupt", 0), 1, after)
        self.assertEqual(after.get("too_small", 0) - before.get("too_small", 0), 100, after)
        m = self.mx.wait_log(r"ocr id=\S+ images=102 read=0 cached=0 skipped=102 .* ms=(\d+)", 5)
        self.assertIsNotNone(m, self.diag())
        self.assertLess(int(m.group(1)), 20000, "the guards must act within the message budget")

    def test_images_past_max_images_are_skipped_and_counted(self):
        before = image_counts(self.admin_port)
        images = [(f"p{i}.png", self.images.text_png(f"PAGE {i} OF THE REPORT")) for i in range(10)]
        self.assert_relayed(images, "a message with 10 images (max_images 8)")
        after = image_counts(self.admin_port)
        self.assertEqual(after.get("over_limit", 0) - before.get("over_limit", 0), 2, after)

    # -- cache -----------------------------------------------------------------------------------
    def test_the_same_image_sent_50_times_is_read_once(self):
        png = self.images.text_png("ROLEX REPLICA SALE")  # no other test uses this picture
        before = image_counts(self.admin_port)
        for i in range(50):
            code, text = send(self.mx.port, self.mail([("r.png", png)], unique_marker(f"campaign{i}")))
            self.assertEqual(code, 250, f"message {i}: {code} {text}{self.diag()}")
        after = image_counts(self.admin_port)
        self.assertEqual(after.get("read", 0) - before.get("read", 0), 1, after)
        self.assertEqual(after.get("cached", 0) - before.get("cached", 0), 49, after)


class OcrBudgetTest(unittest.TestCase):
    """A budget too small for the images: the filter answers with what it read (on_error continue:
    relayed) and counts the rest; the submission profile (AUTH over STARTTLS) does not run OCR."""

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="mxtest-ocr-budget.")
        cls.addClassCleanup(remove_dir, cls.work, "ocr test")
        cls.images = OcrImages()
        cls.addClassCleanup(cls.images.cleanup)
        cls.pki = TestPki()
        cls.addClassCleanup(cls.pki.close)
        cls.pf = PostfixQmqp()
        cls.addClassCleanup(cls.pf.stop)
        cls.pf.start()
        words = write_words_file(cls.work, WORDS)
        cfg = {
            "listener": [{"address": "127.0.0.1:0", "profile": "mx"}, {"address": "127.0.0.1:0", "profile": "submission"}],
            "tls": {"cert_file": cls.pki.server.cert, "key_file": cls.pki.server.key},
            "directory": {"type": "file", "users_file": users_file(os.path.join(cls.work, "users"))},
            "profile.mx": {"filters": ["relay_control", "ocr"]},
            "profile.submission": {"filters": ["relay_control"]},
            "ocr": ocr_settings(words, budget=0.05, image_timeout=0.04, cache_size=0),
        }
        cls.mx = Mxfront([cls.pf.address], cfg)
        cls.addClassCleanup(cls.mx.kill)
        cls.mx.start()
        (_, cls.mx_port), (_, cls.sub_port) = cls.mx.listeners

    def diag(self):
        return f"\n--- mxfront log ---\n{self.mx.log()[-3000:]}\n--- postfix maillog ---\n{self.pf.log()[-1500:]}"

    def test_a_spent_budget_returns_what_was_read_and_counts_the_rest(self):
        images = [(f"p{i}.png", self.images.noisy_rotated_png(f"NOTHING TO SEE {i}")) for i in range(6)]
        marker = unique_marker("budget")
        t0 = time.monotonic()
        code, text = send(self.mx_port, image_mail(images, SENDER, RCPT, f"budget {marker}"))
        self.assertEqual(code, 250, f"on_error continue: relayed ({code} {text}){self.diag()}")
        m = self.mx.wait_log(r"ocr id=\S+ images=6 read=(\d) cached=0 skipped=(\d) .*budget_spent=true .* ms=(\d+)", 5)
        self.assertIsNotNone(m, self.diag())
        self.assertGreater(int(m.group(2)), 0, "images past the budget are skipped")
        self.assertLess(int(m.group(3)), 2000, "the budget (50 ms) bounds the OCR time, not the images")
        self.assertTrue(self.mx.wait_log(r"filter=ocr .*budget spent", 5) or
                        self.mx.wait_log(r"ocr: budget spent", 1), self.diag())
        self.assertEqual(len(self.pf.deliveries(10, 1, match=marker.encode())), 1)
        self.assertLess(time.monotonic() - t0, 30)

    def test_submission_profile_skips_ocr_while_mx_runs_it(self):
        png = self.images.text_png(SPAM_TEXT)
        marker = unique_marker("sub")
        before = len(re.findall(r"ocr id=", self.mx.log()))
        with smtplib.SMTP("127.0.0.1", self.sub_port, local_hostname="client.test", timeout=30) as c:
            c.starttls(context=self.pki.client_context())
            c.login("alice@example.org", "alicepw")
            c.sendmail("alice@example.org", [RCPT], image_mail([("o.png", png)], "alice@example.org", RCPT,
                                                               f"sub {marker}"))
        self.assertEqual(len(self.pf.deliveries(10, 1, match=marker.encode())), 1, self.diag())
        time.sleep(0.5)
        self.assertEqual(len(re.findall(r"ocr id=", self.mx.log())), before, "submission must not run OCR")
        # The mx profile runs it on the same picture.
        send(self.mx_port, image_mail([("o.png", png)], SENDER, RCPT, f"mx {unique_marker('mx')}"))
        deadline = time.monotonic() + 10
        while len(re.findall(r"ocr id=", self.mx.log())) == before and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(len(re.findall(r"ocr id=", self.mx.log())), before + 1, self.diag())


if __name__ == "__main__":
    unittest.main()
