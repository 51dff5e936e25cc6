// filters/ocr/image.h: sniffing, the guards (size, decoded bytes, corrupt input), GIF recomposition
// (sub-rectangles, the three disposals, transparency, interlace, off-screen frames, frame and stack
// limits), preprocessing and the hashes. Every image is made here with Leptonica or giflib's EGif.
#include "filters/ocr/image.h"

#include <gif_lib.h>
#include <gtest/gtest.h>
#include <leptonica/allheaders.h>

#include <bit>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace filters::image;

namespace {

constexpr uint32_t kWhite = 0xffffff00, kBlack = 0x00000000, kRed = 0xff000000;

// ---- images made with Leptonica -------------------------------------------------------------------

void fill(Pix* p, int x, int y, int w, int h, uint32_t value) {
  BOX* box = boxCreate(x, y, w, h);
  pixSetInRectArbitrary(p, box, value);
  boxDestroy(&box);
}

// A white RGB picture with three black blocks and a red bar: something to read, in colour.
PixPtr picture(int w = 200, int h = 80) {
  PixPtr p(pixCreate(w, h, 32));
  pixSetAllArbitrary(p.get(), kWhite);
  fill(p.get(), 10, 10, 30, 40, kBlack);
  fill(p.get(), 60, 20, 20, 30, kBlack);
  fill(p.get(), 120, 5, 40, 50, kBlack);
  fill(p.get(), 0, h - 10, w, 5, kRed);
  return p;
}

std::string encode(Pix* p, int format) {
  l_uint8* data = nullptr;
  size_t size = 0;
  if (pixWriteMem(&data, &size, p, format) != 0) return {};
  std::string out(reinterpret_cast<char*>(data), size);
  lept_free(data);
  return out;
}

uint32_t rgb_at(const Pix* p, int x, int y) {
  l_uint32 v = 0;
  pixGetPixel(const_cast<Pix*>(p), x, y, &v);
  return v & 0xffffff00;
}

uint32_t grey_at(const Pix* p, int x, int y) {
  l_uint32 v = 0;
  pixGetPixel(const_cast<Pix*>(p), x, y, &v);
  return v;
}

// ---- a PNG built by hand (the bomb: a header that claims 20000x20000) ---------------------------

uint32_t crc32(const std::string& s) {
  uint32_t c = 0xffffffff;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
  }
  return ~c;
}

std::string be32(uint32_t v) { return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; }

std::string chunk(const std::string& type, const std::string& data) {
  return be32(static_cast<uint32_t>(data.size())) + type + data + be32(crc32(type + data));
}

std::string png_claiming(uint32_t w, uint32_t h) {
  std::string ihdr = be32(w) + be32(h) + std::string("\x01\x00\x00\x00\x00", 5);  // 1-bit grey
  std::string idat("\x78\x9c\x63\x00\x00\x00\x01\x00\x01", 9);                   // a zlib stream
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", idat) + chunk("IEND", "");
}

// ---- GIFs written with giflib's encoder ------------------------------------------------------------

enum : uint8_t { W = 0, K = 1, R = 2, G = 3 };  // palette: white, black, red, green

struct Frame {
  int left = 0, top = 0, width = 0, height = 0;
  std::vector<uint8_t> index;  // width*height, rows top to bottom
  int delay = 80;
  int disposal = DISPOSE_DO_NOT;
  int transparent = NO_TRANSPARENT_COLOR;
  bool interlace = false;
};

Frame solid(int left, int top, int w, int h, uint8_t colour) {
  Frame f;
  f.left = left, f.top = top, f.width = w, f.height = h;
  f.index.assign(static_cast<size_t>(w) * h, colour);
  return f;
}

// Paints a block in frame coordinates.
Frame& block(Frame& f, int x, int y, int w, int h, uint8_t colour) {
  for (int j = y; j < y + h; ++j)
    for (int i = x; i < x + w; ++i) f.index[static_cast<size_t>(j) * f.width + i] = colour;
  return f;
}

int write_string(GifFileType* gif, const GifByteType* data, int len) {
  static_cast<std::string*>(gif->UserData)->append(reinterpret_cast<const char*>(data), static_cast<size_t>(len));
  return len;
}

// The rows of a frame in the order they are stored (the four interlace passes when interlaced).
std::vector<int> row_order(const Frame& f) {
  std::vector<int> rows;
  if (!f.interlace) {
    for (int y = 0; y < f.height; ++y) rows.push_back(y);
    return rows;
  }
  for (auto [start, step] : {std::pair{0, 8}, {4, 8}, {2, 4}, {1, 2}})
    for (int y = start; y < f.height; y += step) rows.push_back(y);
  return rows;
}

std::string make_gif(int sw, int sh, const std::vector<Frame>& frames) {
  std::string out;
  int err = 0;
  GifFileType* gif = EGifOpen(&out, write_string, &err);
  const GifColorType colours[4] = {{255, 255, 255}, {0, 0, 0}, {255, 0, 0}, {0, 255, 0}};
  ColorMapObject* map = GifMakeMapObject(4, colours);
  EGifSetGifVersion(gif, true);
  EXPECT_EQ(EGifPutScreenDesc(gif, sw, sh, 2, 0, map), GIF_OK);
  for (const Frame& f : frames) {
    GraphicsControlBlock gcb{f.disposal, false, f.delay, f.transparent};
    GifByteType ext[4];
    size_t n = EGifGCBToExtension(&gcb, ext);
    EXPECT_EQ(EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, static_cast<int>(n), ext), GIF_OK);
    EXPECT_EQ(EGifPutImageDesc(gif, f.left, f.top, f.width, f.height, f.interlace, nullptr), GIF_OK);
    for (int y : row_order(f))
      EXPECT_EQ(EGifPutLine(gif, const_cast<uint8_t*>(&f.index[static_cast<size_t>(y) * f.width]), f.width), GIF_OK);
  }
  EGifCloseFile(gif, &err);
  GifFreeMapObject(map);
  return out;
}

void put_le16(std::string& s, size_t at, int v) {
  s[at] = static_cast<char>(v & 0xff);
  s[at + 1] = static_cast<char>(v >> 8);
}

void put_le32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (8 * i));
}

uint32_t le32_at(const std::string& s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(s[at + i]);
  return v;
}

constexpr size_t kFirstDescriptor = 13 + 12 + 8;  // header, 4-colour global map, graphics control

Guards guards() {
  Guards g;
  g.min_width = 24;
  g.min_height = 12;
  return g;
}

// The three marks of the GIF tests, each a 20x20 block at y 10..30 of a 240x40 screen.
constexpr int kSw = 240, kSh = 40;
constexpr int kMarkX[3] = {10, 100, 190};
bool marked(const Pix* p, int mark, int y0 = 0) { return rgb_at(p, kMarkX[mark] + 10, y0 + 20) == kBlack; }

Frame full_frame_with_marks(std::initializer_list<int> marks) {
  Frame f = solid(0, 0, kSw, kSh, W);
  for (int m : marks) block(f, kMarkX[m], 10, 20, 20, K);
  return f;
}

Frame mark_only(int mark) { return solid(kMarkX[mark], 10, 20, 20, K); }

}  // namespace

// ---- sniffing -----------------------------------------------------------------------------------

TEST(Sniff, MagicBytesOfEachFormat) {
  EXPECT_EQ(sniff(std::string("\x89PNG\r\n\x1a\n....", 12)), Format::Png);
  EXPECT_EQ(sniff("\xFF\xD8\xFF\xE0"), Format::Jpeg);
  EXPECT_EQ(sniff("GIF87a...."), Format::Gif);
  EXPECT_EQ(sniff("GIF89a...."), Format::Gif);
  EXPECT_EQ(sniff("BM6\x01"), Format::Bmp);
  EXPECT_EQ(sniff(std::string("II*\0\x08\0\0\0", 8)), Format::Tiff);
  EXPECT_EQ(sniff(std::string("MM\0*\0\0\0\x08", 8)), Format::Tiff);
  EXPECT_EQ(sniff("RIFF\x10\x20\x30\x40WEBPVP8 "), Format::Webp);
  for (std::string pnm : {"P1\n", "P2 ", "P3\t", "P4\r", "P5\n", "P6 10 10 255\n"})
    EXPECT_EQ(sniff(pnm), Format::Pnm) << pnm;
}

TEST(Sniff, UnknownAndNearMisses) {
  const std::vector<std::string> misses = {"", "G", "GIF88a", "GIF8", "\x89PNG", "\xFF\xD8",
                                           std::string("RIFF\0\0\0\0WAVE", 12), "P7 ", "P6x", "P0\n", "%PDF-1.4",
                                           "B", std::string("P1\0", 3), std::string("II+\0", 4), "hello world"};
  for (const std::string& s : misses)
    EXPECT_EQ(sniff(s), Format::Unknown) << s;
}

TEST(Sniff, RealEncodingsAreRecognised) {
  PixPtr p = picture();
  EXPECT_EQ(sniff(encode(p.get(), IFF_PNG)), Format::Png);
  EXPECT_EQ(sniff(encode(p.get(), IFF_JFIF_JPEG)), Format::Jpeg);
  EXPECT_EQ(sniff(encode(p.get(), IFF_BMP)), Format::Bmp);
  EXPECT_EQ(sniff(encode(p.get(), IFF_TIFF)), Format::Tiff);
  EXPECT_EQ(sniff(encode(p.get(), IFF_PNM)), Format::Pnm);
  EXPECT_EQ(sniff(make_gif(kSw, kSh, {full_frame_with_marks({0})})), Format::Gif);
}

TEST(DeclaredFormat, ContentTypesCaseAndParameters) {
  EXPECT_EQ(declared_format("image/png"), Format::Png);
  EXPECT_EQ(declared_format("IMAGE/PNG; name=\"a.png\""), Format::Png);
  EXPECT_EQ(declared_format(" image/jpeg ;charset=x"), Format::Jpeg);
  EXPECT_EQ(declared_format("image/jpg"), Format::Jpeg);
  EXPECT_EQ(declared_format("image/pjpeg"), Format::Jpeg);
  EXPECT_EQ(declared_format("Image/GIF"), Format::Gif);
  EXPECT_EQ(declared_format("image/bmp"), Format::Bmp);
  EXPECT_EQ(declared_format("image/x-bmp"), Format::Bmp);
  EXPECT_EQ(declared_format("image/x-ms-bmp"), Format::Bmp);
  EXPECT_EQ(declared_format("image/tiff"), Format::Tiff);
  EXPECT_EQ(declared_format("image/webp"), Format::Webp);
  for (auto t : {"image/x-portable-anymap", "image/x-portable-bitmap", "image/x-portable-graymap",
                 "image/x-portable-pixmap"})
    EXPECT_EQ(declared_format(t), Format::Pnm) << t;
  for (auto t : {"", "text/plain", "application/octet-stream", "image/svg+xml", "image/pngx", "image/", "png"})
    EXPECT_EQ(declared_format(t), Format::Unknown) << t;
}

TEST(Names, FormatsAndStatuses) {
  EXPECT_EQ(format_name(Format::Png), "png");
  EXPECT_EQ(format_name(Format::Jpeg), "jpeg");
  EXPECT_EQ(format_name(Format::Gif), "gif");
  EXPECT_EQ(format_name(Format::Bmp), "bmp");
  EXPECT_EQ(format_name(Format::Tiff), "tiff");
  EXPECT_EQ(format_name(Format::Webp), "webp");
  EXPECT_EQ(format_name(Format::Pnm), "pnm");
  EXPECT_EQ(format_name(Format::Unknown), "unknown");
  EXPECT_EQ(status_name(Status::Ok), "ok");
  EXPECT_EQ(status_name(Status::TooSmall), "too_small");
  EXPECT_EQ(status_name(Status::TooLarge), "too_large");
  EXPECT_EQ(status_name(Status::Corrupt), "corrupt");
  EXPECT_EQ(status_name(Status::Unsupported), "unsupported");
}

// ---- still images ---------------------------------------------------------------------------------

TEST(DecodeStill, EachFormatGivesOneViewOfTheRightSize) {
  PixPtr p = picture(200, 80);
  struct Case { int iff; Format format; } cases[] = {{IFF_PNG, Format::Png}, {IFF_JFIF_JPEG, Format::Jpeg},
                                                     {IFF_BMP, Format::Bmp}, {IFF_TIFF, Format::Tiff},
                                                     {IFF_TIFF_G4, Format::Tiff}, {IFF_PNM, Format::Pnm},
                                                     {IFF_WEBP, Format::Webp}};
  for (auto c : cases) {
    PixPtr src(c.iff == IFF_TIFF_G4 ? pixConvertTo1(p.get(), 128) : pixCopy(nullptr, p.get()));
    std::string bytes = encode(src.get(), c.iff);
    ASSERT_FALSE(bytes.empty()) << c.iff;
    Decoded d = decode(bytes, guards());
    EXPECT_EQ(d.status, Status::Ok) << c.iff << " " << d.detail;
    EXPECT_EQ(d.format, c.format) << c.iff;
    EXPECT_EQ(d.width, 200u) << c.iff;
    EXPECT_EQ(d.height, 80u) << c.iff;
    EXPECT_EQ(d.frames, 1u) << c.iff;
    EXPECT_GT(d.decoded_bytes, 0u) << c.iff;
    ASSERT_EQ(d.views.size(), 1u) << c.iff;
    EXPECT_EQ(pixGetWidth(d.views[0].get()), 200) << c.iff;
    EXPECT_EQ(pixGetHeight(d.views[0].get()), 80) << c.iff;
  }
}

TEST(DecodeStill, LosslessFormatsKeepThePixels) {
  PixPtr p = picture();
  for (int iff : {IFF_PNG, IFF_BMP, IFF_TIFF, IFF_PNM}) {
    Decoded d = decode(encode(p.get(), iff), guards());
    ASSERT_EQ(d.status, Status::Ok) << iff;
    l_int32 same = 0;
    pixEqual(p.get(), d.views[0].get(), &same);
    EXPECT_TRUE(same) << iff;
  }
}

TEST(DecodeStill, BombHeaderIsRefusedAtOnceWithoutDecoding) {
  const std::string bomb = png_claiming(20000, 20000);
  ASSERT_LT(bomb.size(), 100u);
  const auto t0 = std::chrono::steady_clock::now();
  Decoded d = decode(bomb, Guards{});
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(d.status, Status::TooLarge) << d.detail;
  EXPECT_EQ(d.width, 20000u);
  EXPECT_EQ(d.height, 20000u);
  EXPECT_EQ(d.decoded_bytes, 0u);
  EXPECT_TRUE(d.views.empty());
  EXPECT_LT(ms, 1000);
}

TEST(DecodeStill, BmpHeaderIsReadBeforeDecoding) {
  PixPtr p = picture(200, 80);
  const std::string bmp = encode(p.get(), IFF_BMP);
  ASSERT_EQ(le32_at(bmp, 14), 40u);  // BITMAPINFOHEADER: width at 18, height at 22
  std::string bomb = bmp;
  put_le32(bomb, 18, 20000);
  put_le32(bomb, 22, 20000);
  Decoded d = decode(bomb, guards());
  EXPECT_EQ(d.status, Status::TooLarge) << d.detail;
  EXPECT_EQ(d.width, 20000u);
  std::string top_down = bmp;
  put_le32(top_down, 22, static_cast<uint32_t>(-80));  // negative height: rows stored top-down
  Guards g = guards();
  g.min_height = 81;
  Decoded small = decode(top_down, g);
  EXPECT_EQ(small.status, Status::TooSmall) << small.detail;
  EXPECT_EQ(small.height, 80u);
}

TEST(DecodeStill, MaxPixelsIsTheBoundary) {
  PixPtr p = picture(200, 80);
  const std::string png = encode(p.get(), IFF_PNG);
  Guards g = guards();
  g.max_pixels = 200 * 80;
  EXPECT_EQ(decode(png, g).status, Status::Ok);
  g.max_pixels = 200 * 80 - 1;
  EXPECT_EQ(decode(png, g).status, Status::TooLarge);
}

TEST(DecodeStill, TinyImagesAreTooSmall) {
  PixPtr one(pixCreate(1, 1, 32));
  for (int iff : {IFF_PNG, IFF_BMP, IFF_JFIF_JPEG}) {
    Decoded d = decode(encode(one.get(), iff), guards());
    EXPECT_EQ(d.status, Status::TooSmall) << iff;
    EXPECT_TRUE(d.views.empty());
  }
  PixPtr p = picture(200, 80);
  Guards g = guards();
  g.min_width = 200, g.min_height = 80;
  EXPECT_EQ(decode(encode(p.get(), IFF_PNG), g).status, Status::Ok);
  g.min_height = 81;
  EXPECT_EQ(decode(encode(p.get(), IFF_PNG), g).status, Status::TooSmall);
}

TEST(DecodeStill, CorruptAndTruncatedBytesAreCorrupt) {
  PixPtr p = picture(300, 100);
  const std::string png = encode(p.get(), IFF_PNG);
  std::string garbage;
  for (int i = 0; i < 512; ++i) garbage += static_cast<char>((i * 37 + 11) & 0xff);
  const std::string cases[] = {
      png.substr(0, png.size() / 2) + garbage,           // the harness's corrupt PNG
      png.substr(0, png.size() / 2),                     // truncated in the data
      png.substr(0, 30),                                 // header only
      png.substr(0, 8) + garbage,                        // magic, then garbage
      encode(p.get(), IFF_JFIF_JPEG).substr(0, 20),      // a JPEG cut in its header
      "BM" + garbage,                                    // a BMP header of garbage
      encode(p.get(), IFF_BMP).substr(0, 200),           // a BMP cut in its pixels
      std::string("II*\0", 4) + garbage,                 // a TIFF of garbage
      "P6\n" + garbage,                                  // a PNM of garbage
  };
  for (const std::string& bytes : cases) {
    Decoded d = decode(bytes, guards());
    EXPECT_EQ(d.status, Status::Corrupt) << format_name(sniff(bytes)) << " " << bytes.size();
    EXPECT_TRUE(d.views.empty());
  }
}

TEST(DecodeStill, UnknownBytesAreUnsupported) {
  for (std::string bytes : {std::string(), std::string("hello, this is not an image"), std::string("%PDF-1.4\n")}) {
    Decoded d = decode(bytes, guards());
    EXPECT_EQ(d.status, Status::Unsupported);
    EXPECT_EQ(d.format, Format::Unknown);
  }
}

TEST(DecodeStill, DecodedBytesGuard) {
  PixPtr p = picture(200, 80);  // 32 bpp: 200*80*4 = 64000 octets of raster
  for (int iff : {IFF_PNG, IFF_BMP, IFF_JFIF_JPEG, IFF_TIFF}) {
    const std::string bytes = encode(p.get(), iff);
    Guards g = guards();
    g.max_decoded_bytes = 60000;
    Decoded small = decode(bytes, g);
    EXPECT_EQ(small.status, Status::TooLarge) << iff;
    EXPECT_EQ(small.decoded_bytes, 0u) << iff;  // refused on the header, nothing decoded
    EXPECT_TRUE(small.views.empty());
    g.max_decoded_bytes = 200000;
    Decoded ok = decode(bytes, g);
    EXPECT_EQ(ok.status, Status::Ok) << iff << " " << ok.detail;
    EXPECT_GE(ok.decoded_bytes, 64000u) << iff;
    EXPECT_LE(ok.decoded_bytes, g.max_decoded_bytes) << iff;
  }
}

// ---- GIF ------------------------------------------------------------------------------------------

TEST(DecodeGif, OneFrameIsOneViewLikeAStillImage) {
  Decoded d = decode(make_gif(kSw, kSh, {full_frame_with_marks({0, 2})}), guards());
  ASSERT_EQ(d.status, Status::Ok) << d.detail;
  EXPECT_EQ(d.format, Format::Gif);
  EXPECT_EQ(d.width, unsigned(kSw));
  EXPECT_EQ(d.height, unsigned(kSh));
  EXPECT_EQ(d.frames, 1u);
  ASSERT_EQ(d.views.size(), 1u);
  EXPECT_TRUE(marked(d.views[0].get(), 0));
  EXPECT_FALSE(marked(d.views[0].get(), 1));
  EXPECT_TRUE(marked(d.views[0].get(), 2));
  EXPECT_EQ(rgb_at(d.views[0].get(), 0, 0), kWhite);
}

// The "optimised cumulative" GIF: frames 2 and 3 are small sub-rectangles, disposal none; only the
// final composite holds every mark, and it is the dominant view (equal delays: the last frame).
TEST(DecodeGif, CumulativeSubRectanglesComposeIntoTheDominantView) {
  Decoded d = decode(make_gif(kSw, kSh, {full_frame_with_marks({0}), mark_only(1), mark_only(2)}), guards());
  ASSERT_EQ(d.status, Status::Ok) << d.detail;
  EXPECT_EQ(d.frames, 3u);
  ASSERT_EQ(d.views.size(), 2u);
  const Pix* dominant = d.views[0].get();
  EXPECT_EQ(pixGetWidth(dominant), kSw);
  EXPECT_EQ(pixGetHeight(dominant), kSh);
  for (int m = 0; m < 3; ++m) EXPECT_TRUE(marked(dominant, m)) << m;
  EXPECT_EQ(rgb_at(dominant, 5, 5), kWhite);
  // The stack: the three distinct full frames, growing.
  const Pix* stack = d.views[1].get();
  EXPECT_EQ(pixGetHeight(stack), 3 * kSh + 2 * 10);
  for (int panel = 0; panel < 3; ++panel)
    for (int m = 0; m < 3; ++m) EXPECT_EQ(marked(stack, m, panel * (kSh + 10)), m <= panel) << panel << " " << m;
}

// The "split" GIF: full frames, disposal background, one word each; the final composite holds the
// last word only, the stack holds them all.
TEST(DecodeGif, SplitFramesAreStackedWithWhiteGaps) {
  std::vector<Frame> frames = {full_frame_with_marks({0}), full_frame_with_marks({1}), full_frame_with_marks({2})};
  for (Frame& f : frames) f.disposal = DISPOSE_BACKGROUND;
  Decoded d = decode(make_gif(kSw, kSh, frames), guards());
  ASSERT_EQ(d.status, Status::Ok) << d.detail;
  ASSERT_EQ(d.views.size(), 2u);
  EXPECT_FALSE(marked(d.views[0].get(), 0));
  EXPECT_TRUE(marked(d.views[0].get(), 2));
  const Pix* stack = d.views[1].get();
  EXPECT_EQ(pixGetWidth(stack), kSw);
  EXPECT_EQ(pixGetHeight(stack), 3 * kSh + 2 * 10);
  for (int panel = 0; panel < 3; ++panel)
    for (int m = 0; m < 3; ++m) EXPECT_EQ(marked(stack, m, panel * (kSh + 10)), m == panel) << panel << " " << m;
  for (int gap_row : {kSh, kSh + 9, 2 * kSh + 10, 2 * kSh + 19})
    for (int x : {0, kMarkX[1] + 10, kSw - 1}) EXPECT_EQ(rgb_at(stack, x, gap_row), kWhite) << gap_row;
}

TEST(DecodeGif, DominantIsTheLongestShownFrame) {
  std::vector<Frame> frames = {full_frame_with_marks({0}), full_frame_with_marks({1}), full_frame_with_marks({2})};
  frames[0].delay = 50, frames[1].delay = 300, frames[2].delay = 50;
  Decoded d = decode(make_gif(kSw, kSh, frames), guards());
  ASSERT_EQ(d.status, Status::Ok);
  EXPECT_TRUE(marked(d.views[0].get(), 1));
  EXPECT_FALSE(marked(d.views[0].get(), 2));
}

TEST(DecodeGif, IdenticalFramesGiveOneView) {
  Frame f = full_frame_with_marks({0, 1});
  Decoded d = decode(make_gif(kSw, kSh, {f, f, f, f}), guards());
  ASSERT_EQ(d.status, Status::Ok);
  EXPECT_EQ(d.frames, 4u);
  EXPECT_EQ(d.views.size(), 1u);
}

TEST(DecodeGif, DisposalPreviousRestoresTheCanvas) {
  std::vector<Frame> frames = {full_frame_with_marks({0}), mark_only(1), mark_only(2)};
  frames[0].delay = 10;
  frames[1].delay = 10, frames[1].disposal = DISPOSE_PREVIOUS;
  frames[2].delay = 100;
  Decoded d = decode(make_gif(kSw, kSh, frames), guards());
  ASSERT_EQ(d.status, Status::Ok) << d.detail;
  ASSERT_EQ(d.views.size(), 2u);
  EXPECT_TRUE(marked(d.views[0].get(), 0));
  EXPECT_FALSE(marked(d.views[0].get(), 1));  // restored away before frame 3
  EXPECT_TRUE(marked(d.views[0].get(), 2));
  EXPECT_TRUE(marked(d.views[1].get(), 1, kSh + 10));  // but it was shown: the second full frame
}

TEST(DecodeGif, DisposalBackgroundClearsOnlyTheFrameRectangle) {
  std::vector<Frame> frames = {full_frame_with_marks({0}), mark_only(1), mark_only(2)};
  frames[1].disposal = DISPOSE_BACKGROUND;
  Decoded d = decode(make_gif(kSw, kSh, frames), guards());
  ASSERT_EQ(d.status, Status::Ok) << d.detail;
  EXPECT_TRUE(marked(d.views[0].get(), 0));
  EXPECT_FALSE(marked(d.views[0].get(), 1));
  EXPECT_TRUE(marked(d.views[0].get(), 2));
}

TEST(DecodeGif, TransparentPixelsLeaveTheCanvas) {
  Frame back = solid(0, 0, kSw, kSh, K);
  Frame over = solid(0, 0, kSw, kSh, G);
  over.transparent = G;
  block(over, 10, 10, 20, 20, W);
  Decoded d = decode(make_gif(kSw, kSh, {back, over}), guards());
  ASSERT_EQ(d.status, Status::Ok) << d.detail;
  const Pix* last = d.views[0].get();
  EXPECT_EQ(rgb_at(last, 15, 15), kWhite);  // drawn
  EXPECT_EQ(rgb_at(last, 100, 20), kBlack);  // transparent: frame 1 shows through
  EXPECT_EQ(rgb_at(last, kSw - 1, kSh - 1), kBlack);
}

TEST(DecodeGif, InterlacedRowsLandWhereTheyBelong) {
  Frame f = solid(0, 0, kSw, 37, W);  // 37 rows: every pass ends early
  for (int y = 0; y < 37; y += 3) block(f, 0, y, kSw, 1, K);
  f.interlace = true;
  const std::string bytes = make_gif(kSw, 37, {f});
  Decoded d = decode(bytes, guards());
  ASSERT_EQ(d.status, Status::Ok) << d.detail;
  for (int y = 0; y < 37; ++y) EXPECT_EQ(rgb_at(d.views[0].get(), 7, y), y % 3 == 0 ? kBlack : kWhite) << y;
  // Leptonica's own (first-frame) GIF reader agrees.
  PixPtr lept(pixReadMem(reinterpret_cast<const l_uint8*>(bytes.data()), bytes.size()));
  ASSERT_TRUE(lept);
  PixPtr lept32(pixConvertTo32(lept.get()));
  l_int32 same = 0;
  pixEqual(lept32.get(), d.views[0].get(), &same);
  EXPECT_TRUE(same);
}

TEST(DecodeGif, InterlacedSubRectangleClippedAtTheBottom) {
  Frame f = solid(50, 20, 40, 30, K);  // rows 20..49 on a 40-row screen
  f.interlace = true;
  block(f, 0, 0, 40, 1, R);
  Decoded d = decode(make_gif(kSw, kSh, {full_frame_with_marks({}), f}), guards());
  ASSERT_EQ(d.status, Status::Ok) << d.detail;
  EXPECT_EQ(rgb_at(d.views[0].get(), 60, 20), kRed);
  EXPECT_EQ(rgb_at(d.views[0].get(), 60, 39), kBlack);
  EXPECT_EQ(rgb_at(d.views[0].get(), 60, 19), kWhite);
}

TEST(DecodeGif, FramesBeyondTheScreenAreClippedOrSkipped) {
  Frame partly = solid(kSw - 20, kSh - 10, 60, 50, K);  // mostly off the bottom-right corner
  Frame off = solid(kSw + 100, 0, 30, 30, R);           // entirely off screen
  Frame below = solid(0, kSh + 5, kSw, 10, R);
  Frame after = mark_only(0);
  Decoded d = decode(make_gif(kSw, kSh, {full_frame_with_marks({}), partly, off, below, after}), guards());
  ASSERT_EQ(d.status, Status::Ok) << d.detail;
  EXPECT_EQ(d.frames, 5u);  // off-screen frames are shown, they just draw nothing
  const Pix* last = d.views[0].get();
  EXPECT_EQ(rgb_at(last, kSw - 1, kSh - 1), kBlack);
  EXPECT_EQ(rgb_at(last, kSw - 20, kSh - 10), kBlack);
  EXPECT_EQ(rgb_at(last, kSw - 21, kSh - 10), kWhite);
  EXPECT_TRUE(marked(last, 0));
  for (int y = 0; y < kSh; ++y) EXPECT_EQ(rgb_at(last, 5, y), kWhite) << y;  // nothing red, nothing wrapped
}

TEST(DecodeGif, ZeroSizedFrameIsSkippedAndTheNextFrameRead) {
  std::string bytes = make_gif(kSw, kSh, {full_frame_with_marks({2}), mark_only(0)});
  ASSERT_EQ(bytes[kFirstDescriptor], ',');
  put_le16(bytes, kFirstDescriptor + 5, 0);  // first frame: width 0, its data still there
  Decoded d = decode(bytes, guards());
  ASSERT_EQ(d.status, Status::Ok) << d.detail;
  EXPECT_EQ(d.frames, 2u);
  EXPECT_TRUE(marked(d.views[0].get(), 0));
  EXPECT_FALSE(marked(d.views[0].get(), 2));
}

TEST(DecodeGif, MaxFramesIsHonoured) {
  std::vector<Frame> frames;
  for (int i = 0; i < 6; ++i) {
    frames.push_back(full_frame_with_marks({}));
    block(frames.back(), 10 + 30 * i, 10, 20, 20, K);
  }
  Guards g = guards();
  g.max_frames = 2;
  Decoded d = decode(make_gif(kSw, kSh, frames), g);
  ASSERT_EQ(d.status, Status::Ok) << d.detail;
  EXPECT_EQ(d.frames, 2u);
  ASSERT_EQ(d.views.size(), 2u);
  EXPECT_EQ(pixGetHeight(d.views[1].get()), 2 * kSh + 10);
  EXPECT_EQ(rgb_at(d.views[0].get(), 45, 20), kBlack);  // frame 2 is the last one read
  EXPECT_EQ(rgb_at(d.views[0].get(), 75, 20), kWhite);
}

TEST(DecodeGif, MaxStackedKeepsTheLongestShownInFrameOrder) {
  std::vector<Frame> frames = {full_frame_with_marks({0}), full_frame_with_marks({1}), full_frame_with_marks({2}),
                               full_frame_with_marks({0, 2})};
  const int delays[] = {10, 200, 20, 300};
  for (size_t i = 0; i < frames.size(); ++i) frames[i].delay = delays[i];
  Guards g = guards();
  g.max_stacked = 2;
  Decoded d = decode(make_gif(kSw, kSh, frames), g);
  ASSERT_EQ(d.status, Status::Ok) << d.detail;
  ASSERT_EQ(d.views.size(), 2u);
  EXPECT_TRUE(marked(d.views[0].get(), 0));  // dominant: the last frame, 300
  EXPECT_FALSE(marked(d.views[0].get(), 1));
  const Pix* stack = d.views[1].get();
  ASSERT_EQ(pixGetHeight(stack), 2 * kSh + 10);
  EXPECT_TRUE(marked(stack, 1, 0));
  EXPECT_FALSE(marked(stack, 0, 0));
  EXPECT_TRUE(marked(stack, 0, kSh + 10));
  EXPECT_TRUE(marked(stack, 2, kSh + 10));
}

TEST(DecodeGif, TruncatedAfterAGoodFrameKeepsWhatWasRead) {
  const std::string one = make_gif(kSw, kSh, {full_frame_with_marks({0})});
  const std::string two = make_gif(kSw, kSh, {full_frame_with_marks({0}), full_frame_with_marks({1})});
  // Cut in the middle of the second frame's data: the first frame stands.
  Decoded d = decode(two.substr(0, one.size() + 20), guards());
  EXPECT_EQ(d.status, Status::Ok) << d.detail;
  EXPECT_EQ(d.frames, 1u);
  ASSERT_EQ(d.views.size(), 1u);
  EXPECT_TRUE(marked(d.views[0].get(), 0));
  EXPECT_FALSE(d.detail.empty());
  // No trailer at all: still fine.
  EXPECT_EQ(decode(one.substr(0, one.size() - 1), guards()).status, Status::Ok);
}

TEST(DecodeGif, BrokenFirstFrameIsCorrupt) {
  const std::string gif = make_gif(kSw, kSh, {full_frame_with_marks({0, 1, 2})});
  for (size_t cut : {size_t{6}, size_t{13}, kFirstDescriptor + 5, kFirstDescriptor + 20, gif.size() / 2}) {
    Decoded d = decode(gif.substr(0, cut), guards());
    EXPECT_EQ(d.status, Status::Corrupt) << cut;
    EXPECT_TRUE(d.views.empty());
  }
  std::string garbled = gif;
  for (size_t i = kFirstDescriptor + 11; i < garbled.size() - 1; ++i) garbled[i] = static_cast<char>(0xff);
  EXPECT_EQ(decode(garbled, guards()).status, Status::Corrupt);
}

TEST(DecodeGif, NoColourMapIsCorrupt) {
  std::string gif = make_gif(kSw, kSh, {full_frame_with_marks({0})});
  gif[10] = static_cast<char>(gif[10] & 0x7f);  // no global colour map...
  gif.erase(13, 12);                              // ...and its 4 entries gone; frames have none either
  Decoded d = decode(gif, guards());
  EXPECT_EQ(d.status, Status::Corrupt);
  EXPECT_NE(d.detail.find("colo"), std::string::npos) << d.detail;
  EXPECT_TRUE(d.views.empty());
}

TEST(DecodeGif, ScreenGuards) {
  std::string gif = make_gif(kSw, kSh, {full_frame_with_marks({0})});
  std::string huge = gif;
  put_le16(huge, 6, 5000);
  put_le16(huge, 8, 4000);  // 20 Mpx, more than the default max_pixels
  Guards roomy;
  roomy.max_decoded_bytes = 1ull << 30;
  Decoded d = decode(huge, roomy);
  EXPECT_EQ(d.status, Status::TooLarge);
  EXPECT_EQ(d.width, 5000u);
  EXPECT_EQ(d.decoded_bytes, 0u);
  std::string tiny = make_gif(1, 1, {solid(0, 0, 1, 1, W)});
  EXPECT_EQ(decode(tiny, guards()).status, Status::TooSmall);
  Guards g = guards();
  g.max_decoded_bytes = 4 * kSw * kSh - 1;  // not even the canvas
  EXPECT_EQ(decode(gif, g).status, Status::TooLarge);
}

TEST(DecodeGif, DecodedBytesCountEveryFrame) {
  std::vector<Frame> frames;
  for (int i = 0; i < 6; ++i) {
    frames.push_back(full_frame_with_marks({}));
    block(frames.back(), 10 + 30 * i, 10, 20, 20, K);
  }
  const std::string gif = make_gif(kSw, kSh, frames);
  Decoded ok = decode(gif, guards());
  ASSERT_EQ(ok.status, Status::Ok);
  // The canvas, 6 distinct full frames, 6 frames of 40 rows of 240 indices, the stack of 6.
  const uint64_t canvas = 4ull * kSw * kSh, rows = 6ull * kSh * kSw, stack = 4ull * kSw * (6 * kSh + 5 * 10);
  EXPECT_EQ(ok.decoded_bytes, canvas + 6 * canvas + rows + stack);
  Guards g = guards();
  g.max_decoded_bytes = ok.decoded_bytes;
  EXPECT_EQ(decode(gif, g).status, Status::Ok);
  g.max_decoded_bytes = ok.decoded_bytes - 1;
  EXPECT_EQ(decode(gif, g).status, Status::TooLarge);
  g.max_decoded_bytes = canvas + 3 * canvas;  // runs out while keeping full frames
  Decoded short_of = decode(gif, g);
  EXPECT_EQ(short_of.status, Status::TooLarge);
  EXPECT_TRUE(short_of.views.empty());
}

// ---- preprocessing and hashes ---------------------------------------------------------------------

TEST(Prepare, GreyWithBorderAndUpscale) {
  PixPtr p = picture(200, 80);
  const std::string before = pixel_hash(p.get());
  PixPtr big = prepare(p.get(), 300);
  ASSERT_TRUE(big);
  EXPECT_EQ(pixGetDepth(big.get()), 8);
  EXPECT_EQ(pixGetColormap(big.get()), nullptr);
  EXPECT_EQ(pixGetWidth(big.get()), 2 * 200 + 20);
  EXPECT_EQ(pixGetHeight(big.get()), 2 * 80 + 20);
  EXPECT_EQ(grey_at(big.get(), 0, 0), 255u);
  EXPECT_EQ(grey_at(big.get(), 9, 9), 255u);
  EXPECT_EQ(grey_at(big.get(), 10 + 2 * 20, 10 + 2 * 20), 0u);  // a black block, scaled
  EXPECT_EQ(pixel_hash(p.get()), before);                       // the input is untouched
  PixPtr same = prepare(p.get(), 80);                            // shorter side 80: not below 80
  EXPECT_EQ(pixGetWidth(same.get()), 220);
  EXPECT_EQ(pixGetHeight(same.get()), 100);
  PixPtr never = prepare(p.get(), 0);
  EXPECT_EQ(pixGetWidth(never.get()), 220);
}

TEST(Prepare, EveryDepthBecomesGrey) {
  PixPtr p = picture(100, 60);
  PixPtr one(pixConvertTo1(p.get(), 128));
  PixPtr grey(pixConvertRGBToLuminance(p.get()));
  PixPtr two(pixThresholdTo2bpp(grey.get(), 4, 1));
  PixPtr four(pixThresholdTo4bpp(grey.get(), 16, 0));
  PixPtr mapped(pixConvertRGBToColormap(p.get(), 1));
  ASSERT_TRUE(pixGetColormap(mapped.get()));
  for (const Pix* src : {one.get(), two.get(), four.get(), grey.get(), mapped.get(), p.get()}) {
    PixPtr out = prepare(src, 0);
    ASSERT_TRUE(out) << pixGetDepth(const_cast<Pix*>(src));
    EXPECT_EQ(pixGetDepth(out.get()), 8);
    EXPECT_EQ(pixGetColormap(out.get()), nullptr);
    EXPECT_EQ(pixGetWidth(out.get()), 120);
    EXPECT_LT(grey_at(out.get(), 10 + 20, 10 + 20), 64u) << pixGetDepth(const_cast<Pix*>(src));  // black block
    EXPECT_GT(grey_at(out.get(), 10 + 90, 10 + 5), 192u) << pixGetDepth(const_cast<Pix*>(src));  // white
  }
}

TEST(Prepare, TransparentBackgroundReadsAsWhite) {
  PixPtr rgba(pixCreate(60, 30, 32));
  pixSetSpp(rgba.get(), 4);
  pixSetAllArbitrary(rgba.get(), 0x00000000);  // black and fully transparent
  fill(rgba.get(), 10, 10, 10, 10, 0x000000ff);  // opaque black
  PixPtr out = prepare(rgba.get(), 0);
  ASSERT_TRUE(out);
  EXPECT_GT(grey_at(out.get(), 10 + 40, 10 + 5), 250u);
  EXPECT_LT(grey_at(out.get(), 10 + 15, 10 + 15), 5u);
}

TEST(PixelHash, SamePixelsInAnotherContainerHashEqual) {
  PixPtr p = picture();
  Decoded png = decode(encode(p.get(), IFF_PNG), guards());
  Decoded bmp = decode(encode(p.get(), IFF_BMP), guards());
  ASSERT_EQ(png.status, Status::Ok);
  ASSERT_EQ(bmp.status, Status::Ok);
  const std::string h = pixel_hash(png.views[0].get());
  EXPECT_EQ(h.size(), 64u);
  EXPECT_EQ(h.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(h, pixel_hash(bmp.views[0].get()));
  EXPECT_EQ(h, pixel_hash(p.get()));
  // Grey: PNG keeps 8 bpp, BMP adds a grey colour map; the picture is the same.
  PixPtr grey(pixConvertRGBToLuminance(p.get()));
  Decoded gpng = decode(encode(grey.get(), IFF_PNG), guards());
  Decoded gbmp = decode(encode(grey.get(), IFF_BMP), guards());
  ASSERT_EQ(gbmp.status, Status::Ok);
  EXPECT_EQ(pixel_hash(gpng.views[0].get()), pixel_hash(gbmp.views[0].get()));
}

TEST(PixelHash, DifferentPixelsOrSizesHashDifferent) {
  PixPtr p = picture();
  PixPtr q(pixCopy(nullptr, p.get()));
  pixSetPixel(q.get(), 199, 0, 0x01000000);
  EXPECT_NE(pixel_hash(p.get()), pixel_hash(q.get()));
  PixPtr wide(pixCreate(20, 10, 8)), tall(pixCreate(10, 20, 8));
  EXPECT_NE(pixel_hash(wide.get()), pixel_hash(tall.get()));
  // Row padding is not part of the picture: 1 bpp, 13 pixels wide, junk in the padding bits.
  PixPtr a(pixCreate(13, 4, 1)), b(pixCreate(13, 4, 1));
  pixGetData(b.get())[0] |= 0x0000ffff;
  EXPECT_EQ(pixel_hash(a.get()), pixel_hash(b.get()));
  pixSetPixel(b.get(), 12, 0, 1);
  EXPECT_NE(pixel_hash(a.get()), pixel_hash(b.get()));
}

// A picture whose 9x8 thumbnail has strong steps between neighbours, so no comparison is a near tie:
// a JPEG re-encode (or a rescale) gives exactly the same difference hash.
PixPtr steps() {
  PixPtr p(pixCreate(180, 160, 32));
  for (int cy = 0; cy < 8; ++cy)
    for (int cx = 0; cx < 9; ++cx) {
      const uint32_t v = static_cast<uint32_t>(((cx * 7 + cy * 3) % 9) * 28 + 10);
      fill(p.get(), cx * 20, cy * 20, 20, 20, v << 24 | v << 16 | v << 8);
    }
  return p;
}

TEST(Dhash, JpegReencodeAndRescaleKeepTheHash) {
  PixPtr p = steps();
  const uint64_t h = dhash(p.get());
  EXPECT_NE(h, 0u);
  Decoded jpeg = decode(encode(p.get(), IFF_JFIF_JPEG), guards());
  ASSERT_EQ(jpeg.status, Status::Ok);
  EXPECT_EQ(dhash(jpeg.views[0].get()), h);
  PixPtr half(pixScale(p.get(), 0.5f, 0.5f));
  EXPECT_EQ(dhash(half.get()), h);
  // An ordinary picture re-encoded as JPEG stays within a few bits.
  PixPtr pic = picture(400, 160);
  Decoded pj = decode(encode(pic.get(), IFF_JFIF_JPEG), guards());
  ASSERT_EQ(pj.status, Status::Ok);
  EXPECT_LE(std::popcount(dhash(pic.get()) ^ dhash(pj.views[0].get())), 4);
}

TEST(Dhash, BitsCompareLeftAndRightNeighbours) {
  PixPtr falling(pixCreate(90, 80, 8)), rising(pixCreate(90, 80, 8));
  for (int x = 0; x < 90; ++x)
    for (int y = 0; y < 80; ++y) {
      pixSetPixel(falling.get(), x, y, static_cast<l_uint32>(250 - 2 * x));
      pixSetPixel(rising.get(), x, y, static_cast<l_uint32>(20 + 2 * x));
    }
  EXPECT_EQ(dhash(falling.get()), ~uint64_t{0});  // every pixel brighter than its right neighbour
  EXPECT_EQ(dhash(rising.get()), 0u);
}

TEST(Dhash, DifferentPicturesDiffer) {
  PixPtr p = steps();
  PixPtr flipped(pixFlipLR(nullptr, p.get()));
  EXPECT_GT(std::popcount(dhash(p.get()) ^ dhash(flipped.get())), 16);
}

// The contract says thread-safe: decodes of every kind and prepare/hash of one shared const Pix run
// in parallel (meaningful under ThreadSanitizer, which scripts/test.sh runs on every unit test).
TEST(ThreadSafety, ParallelDecodesAndOneSharedPix) {
  PixPtr shared = picture();
  const std::string png = encode(shared.get(), IFF_PNG), jpeg = encode(shared.get(), IFF_JFIF_JPEG);
  std::vector<Frame> frames = {full_frame_with_marks({0}), mark_only(1), mark_only(2)};
  frames[1].disposal = DISPOSE_PREVIOUS;
  const std::string gif = make_gif(kSw, kSh, frames);
  const std::string want = pixel_hash(shared.get());
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        const bool good = decode(png, guards()).status == Status::Ok && decode(jpeg, guards()).status == Status::Ok &&
                          decode(gif, guards()).views.size() == 2 && prepare(shared.get(), 300) != nullptr &&
                          pixel_hash(shared.get()) == want && dhash(shared.get()) != 0;
        ok[t] += good;
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(ok[t], 20) << t;
}
