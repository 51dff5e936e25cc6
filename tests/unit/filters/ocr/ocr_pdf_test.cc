// PDF attachments (poppler-cpp): the text layer is extracted, a page without text is rendered to a
// grey picture, guards bound pages and pixels, and garbage is Corrupt, never a crash.
#include <gtest/gtest.h>
#include <leptonica/allheaders.h>

#include <string>
#include <vector>

#include "filters/ocr/pdf.h"

namespace {
using filters::pdf::Extracted;

// A minimal PDF with `pages` pages, each drawing `content` (fonts: Helvetica as /F1).
std::string make_pdf(const std::string& content, int pages = 1, const std::string& media = "0 0 612 792") {
  std::vector<std::string> objs;
  objs.push_back("<< /Type /Catalog /Pages 2 0 R >>");
  std::string kids;
  for (int i = 0; i < pages; ++i) kids += std::to_string(5 + i) + " 0 R ";
  objs.push_back("<< /Type /Pages /Kids [" + kids + "] /Count " + std::to_string(pages) + " >>");
  objs.push_back("<< /Length " + std::to_string(content.size()) + " >>\nstream\n" + content + "\nendstream");
  objs.push_back("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
  for (int i = 0; i < pages; ++i)
    objs.push_back("<< /Type /Page /Parent 2 0 R /MediaBox [" + media +
                   "] /Contents 3 0 R /Resources << /Font << /F1 4 0 R >> >> >>");
  std::string out = "%PDF-1.4\n";
  std::vector<size_t> offsets;
  for (size_t i = 0; i < objs.size(); ++i) {
    offsets.push_back(out.size());
    out += std::to_string(i + 1) + " 0 obj\n" + objs[i] + "\nendobj\n";
  }
  size_t xref = out.size();
  out += "xref\n0 " + std::to_string(objs.size() + 1) + "\n0000000000 65535 f \n";
  char line[32];
  for (size_t off : offsets) {
    snprintf(line, sizeof line, "%010zu 00000 n \n", off);
    out += line;
  }
  out += "trailer\n<< /Size " + std::to_string(objs.size() + 1) + " /Root 1 0 R >>\nstartxref\n" + std::to_string(xref) +
         "\n%%EOF\n";
  return out;
}

TEST(Pdf, SniffsTheHeader) {
  EXPECT_TRUE(filters::pdf::is_pdf("%PDF-1.7\n..."));
  EXPECT_TRUE(filters::pdf::is_pdf("\r\n%PDF-1.4"));  // junk before the header is tolerated by readers
  EXPECT_FALSE(filters::pdf::is_pdf("GIF89a"));
  EXPECT_FALSE(filters::pdf::is_pdf(""));
}

TEST(Pdf, TextLayerIsExtractedAndATextPageIsNotRendered) {
  Extracted e = filters::pdf::extract(make_pdf("BT /F1 24 Tf 72 700 Td (CHEAP VIAGRA BUY NOW) Tj ET"), {});
  ASSERT_EQ(e.status, Extracted::Status::Ok);
  EXPECT_EQ(e.pages, 1u);
  EXPECT_NE(e.text.find("CHEAP VIAGRA BUY NOW"), std::string::npos) << e.text;
  EXPECT_TRUE(e.renders.empty());
}

TEST(Pdf, APageWithoutTextIsRenderedInGreyWithinThePixelBound) {
  // A black bar and no text: rendered, 8 bpp, its pixels bounded.
  filters::pdf::Guards g;
  g.max_pixels = 200'000;
  Extracted e = filters::pdf::extract(make_pdf("0 g 100 600 400 80 re f"), g);
  ASSERT_EQ(e.status, Extracted::Status::Ok);
  ASSERT_EQ(e.renders.size(), 1u);
  Pix* p = e.renders[0].get();
  EXPECT_EQ(pixGetDepth(p), 8);
  EXPECT_LE(static_cast<uint64_t>(pixGetWidth(p)) * pixGetHeight(p), g.max_pixels);
  l_int32 darkest = 255;
  pixGetExtremeValue(p, 1, L_SELECT_MIN, nullptr, nullptr, nullptr, &darkest);
  EXPECT_LT(darkest, 64) << "the black bar is in the picture";
}

TEST(Pdf, OnlyTheFirstPagesAreLookedAt) {
  filters::pdf::Guards g;
  g.max_pages = 2;
  Extracted e = filters::pdf::extract(make_pdf("BT /F1 24 Tf 72 700 Td (PAGE TEXT HERE) Tj ET", 5), g);
  ASSERT_EQ(e.status, Extracted::Status::Ok);
  EXPECT_EQ(e.pages, 5u);
  EXPECT_EQ(e.looked_at, 2u);
}

TEST(Pdf, AHugePageIsRenderedAtALowerResolution) {
  filters::pdf::Guards g;
  g.max_pixels = 1'000'000;
  Extracted e = filters::pdf::extract(make_pdf("0 g 0 0 100 100 re f", 1, "0 0 3600 3600"), g);  // 50 x 50 inches: 25 Mpx at 100 dpi
  ASSERT_EQ(e.status, Extracted::Status::Ok);
  ASSERT_EQ(e.renders.size(), 1u);
  EXPECT_LE(static_cast<uint64_t>(pixGetWidth(e.renders[0].get())) * pixGetHeight(e.renders[0].get()), g.max_pixels);
}

TEST(Pdf, GarbageAndTruncatedFilesAreCorrupt) {
  EXPECT_EQ(filters::pdf::extract("%PDF-1.4\nnothing else", {}).status, Extracted::Status::Corrupt);
  EXPECT_EQ(filters::pdf::extract("", {}).status, Extracted::Status::Corrupt);
  std::string pdf = make_pdf("BT /F1 24 Tf 72 700 Td (X) Tj ET");
  for (size_t cut : {pdf.size() / 4, pdf.size() / 2, pdf.size() - 10}) {
    Extracted e = filters::pdf::extract(pdf.substr(0, cut), {});  // poppler may repair some: never a crash
    EXPECT_TRUE(e.status == Extracted::Status::Ok || e.status == Extracted::Status::Corrupt);
  }
}

}  // namespace
