// Sniffing, guarded decoding of still images with Leptonica (the header is read and checked against
// the guards before any pixel is decoded; GIFs go to gif.cc), grey/border/upscale preprocessing and
// the two hashes. Never throws; a hostile image ends as a Status, never as a crash.
#include "filters/ocr/image.h"

#include <leptonica/allheaders.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <mutex>

#include "filters/ocr/gif.h"

namespace filters::image {
namespace {

constexpr uint32_t kWhite = 0xffffff00;  // Leptonica RGB words are 0xRRGGBBAA
constexpr int kBorder = 10;

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool is_pnm(std::string_view b) {
  return b.size() >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6' && b[2] != '\0' &&
         std::strchr(" \t\r\n\v\f", b[2]) != nullptr;
}

std::string lower_trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

uint32_t le16(std::string_view b, size_t at) {
  return static_cast<uint8_t>(b[at]) | static_cast<uint32_t>(static_cast<uint8_t>(b[at + 1])) << 8;
}
uint32_t le32(std::string_view b, size_t at) { return le16(b, at) | le16(b, at + 2) << 16; }

// What the header says, and what decoding it will cost.
struct Header {
  int64_t w = 0, h = 0;
  int depth = 32;          // of the Pix Leptonica will make
  uint64_t transient = 0;  // decoder buffers beside that Pix
};

uint64_t raster_bytes(uint64_t w, uint64_t h, int depth) { return (w * depth + 31) / 32 * 4 * h; }

// Leptonica 1.82's pixReadHeaderMem decodes a whole BMP to learn its size, so BMP headers are read
// here: BITMAPCOREHEADER (12 bytes, 16-bit sizes) or BITMAPINFOHEADER and later (>= 40 bytes).
bool bmp_header(std::string_view b, Header& h) {
  if (b.size() < 30) return false;
  const uint32_t dib = le32(b, 14);
  uint32_t bpp = 0;
  if (dib == 12) {
    h.w = le16(b, 18), h.h = le16(b, 20), bpp = le16(b, 24);
  } else if (dib >= 40) {
    h.w = static_cast<int32_t>(le32(b, 18)), h.h = static_cast<int32_t>(le32(b, 22)), bpp = le16(b, 28);
  } else {
    return false;
  }
  h.h = h.h < 0 ? -h.h : h.h;  // negative: rows stored top-down
  if (bpp != 1 && bpp != 2 && bpp != 4 && bpp != 8 && bpp != 16 && bpp != 24 && bpp != 32) return false;
  h.depth = bpp <= 8 ? static_cast<int>(bpp) : 32;
  return true;
}

uint32_t be16(std::string_view b, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(b[at])) << 8 | static_cast<uint8_t>(b[at + 1]);
}

// A progressive JPEG makes libjpeg hold every DCT coefficient of the image (2 bytes per sample):
// walks the marker segments up to the frame header (SOFn) or the first scan.
bool jpeg_progressive(std::string_view b) {
  size_t at = 2;
  while (at + 4 <= b.size() && static_cast<uint8_t>(b[at]) == 0xFF) {
    const uint8_t m = static_cast<uint8_t>(b[at + 1]);
    if (m == 0xC2 || m == 0xC6 || m == 0xCA || m == 0xCE) return true;
    if (m == 0xDA || (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC)) return false;
    if (m == 0xFF) {
      ++at;  // fill byte
    } else if ((m >= 0xD0 && m <= 0xD9) || m == 0x01) {
      at += 2;  // markers without a length
    } else {
      at += 2 + be16(b, at + 2);
    }
  }
  return false;
}

int out_depth(Format f, int bps, int spp, int cmap) {
  if (spp >= 2 || (f == Format::Png && cmap)) return 32;  // a PNG palette with alpha is read as RGBA
  if (bps > 8) return f == Format::Png ? 8 : 16;          // Leptonica strips 16-bit PNG samples to 8
  return bps <= 1 ? 1 : bps <= 2 ? 2 : bps <= 4 ? 4 : 8;
}

uint64_t transient_bytes(Format f, std::string_view b, uint64_t w, uint64_t h, int bps, int spp) {
  if (f == Format::Png) return (w * std::min(bps, 8) * spp + 7) / 8 * h;  // png_read_png holds every row
  if (f == Format::Jpeg && jpeg_progressive(b)) return (w + 7) / 8 * 8 * ((h + 7) / 8 * 8) * spp * 2;
  return 0;
}

bool read_header(Format f, std::string_view b, Header& h) {
  if (f == Format::Bmp) return bmp_header(b, h);
  l_int32 format = 0, w = 0, ht = 0, bps = 0, spp = 0, cmap = 0;
  if (pixReadHeaderMem(reinterpret_cast<const l_uint8*>(b.data()), b.size(), &format, &w, &ht, &bps, &spp, &cmap))
    return false;
  h.w = w, h.h = ht, h.depth = out_depth(f, bps, spp, cmap);
  h.transient = transient_bytes(f, b, static_cast<uint64_t>(std::max(w, 0)), static_cast<uint64_t>(std::max(ht, 0)),
                                bps, spp);
  return true;
}

// Whether this Leptonica was built with the library for the format (getImagelibVersions()).
bool leptonica_reads(Format f) {
  static const std::string libs = [] {
    char* s = getImagelibVersions();
    std::string out = s ? s : "";
    lept_free(s);
    return out;
  }();
  switch (f) {
    case Format::Png: return libs.find("libpng") != std::string::npos;
    case Format::Jpeg: return libs.find("libjpeg") != std::string::npos;
    case Format::Tiff: return libs.find("libtiff") != std::string::npos;
    case Format::Webp: return libs.find("libwebp") != std::string::npos;
    case Format::Bmp:
    case Format::Pnm: return true;
    default: return false;
  }
}

Decoded refuse(Decoded d, Status s, std::string why) {
  d.status = s;
  d.detail = std::move(why);
  return d;
}

std::string dims(uint64_t w, uint64_t h) { return std::to_string(w) + "x" + std::to_string(h); }

// Width and height against the guards (also used on what the decoder actually made).
Status size_guard(uint64_t w, uint64_t h, const Guards& g, std::string& why) {
  why = dims(w, h);
  if (w * h > g.max_pixels) {
    why += " is more than max_pixels";
    return Status::TooLarge;
  }
  if (w < g.min_width || h < g.min_height) return Status::TooSmall;
  return Status::Ok;
}

Decoded decode_still(std::string_view bytes, const Guards& g, Decoded d) {
  Header h;
  if (!read_header(d.format, bytes, h))
    return refuse(std::move(d), leptonica_reads(d.format) ? Status::Corrupt : Status::Unsupported, "unreadable header");
  if (h.w <= 0 || h.h <= 0) return refuse(std::move(d), Status::Corrupt, "empty image " + dims(0, 0));
  d.width = static_cast<unsigned>(std::min<int64_t>(h.w, UINT32_MAX));
  d.height = static_cast<unsigned>(std::min<int64_t>(h.h, UINT32_MAX));
  std::string why;
  if (Status s = size_guard(d.width, d.height, g, why); s != Status::Ok) return refuse(std::move(d), s, why);
  if (raster_bytes(d.width, d.height, h.depth) + h.transient > g.max_decoded_bytes)
    return refuse(std::move(d), Status::TooLarge, dims(d.width, d.height) + " would pass max_decoded_bytes");
  PixPtr pix(pixReadMem(reinterpret_cast<const l_uint8*>(bytes.data()), bytes.size()));
  if (!pix) return refuse(std::move(d), Status::Corrupt, "not decodable");
  d.width = static_cast<unsigned>(pixGetWidth(pix.get()));
  d.height = static_cast<unsigned>(pixGetHeight(pix.get()));
  d.decoded_bytes = static_cast<uint64_t>(pixGetWpl(pix.get())) * 4 * d.height + h.transient;
  if (Status s = size_guard(d.width, d.height, g, why); s != Status::Ok) return refuse(std::move(d), s, why);
  if (d.decoded_bytes > g.max_decoded_bytes) return refuse(std::move(d), Status::TooLarge, "past max_decoded_bytes");
  d.frames = 1;
  d.views.push_back(std::move(pix));
  d.status = Status::Ok;
  return d;
}

// Leptonica's in-place and clone shortcuts touch the source's refcount, so a const source is only
// ever read: every branch returns a new Pix.
PixPtr flat_rgb(const Pix* p);

PixPtr grey8(const Pix* p) {
  Pix* s = const_cast<Pix*>(p);
  if (pixGetColormap(s)) {
    PixPtr plain(pixRemoveColormap(s, REMOVE_CMAP_BASED_ON_SRC));
    return plain ? grey8(plain.get()) : PixPtr{};
  }
  switch (pixGetDepth(s)) {
    case 8: return PixPtr(pixCopy(nullptr, s));
    case 1:
    case 2:
    case 4:
    case 16: return PixPtr(pixConvertTo8(s, 0));
    case 24:
    case 32: {
      PixPtr rgb = flat_rgb(p);
      return rgb ? PixPtr(pixConvertRGBToLuminance(rgb.get())) : PixPtr{};
    }
    default: return {};
  }
}

// 32 bpp RGB, alpha blended over white (a transparent background reads as white, as it shows).
PixPtr flat_rgb(const Pix* p) {
  Pix* s = const_cast<Pix*>(p);
  if (pixGetDepth(s) == 32 && pixGetSpp(s) == 4) return PixPtr(pixAlphaBlendUniform(s, kWhite));
  if (pixGetDepth(s) == 32) return PixPtr(pixCopy(nullptr, s));
  if (pixGetDepth(s) == 24) return PixPtr(pixConvert24To32(s));
  return PixPtr(pixConvertTo32(s));
}

void put_le32(std::array<unsigned char, 4>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[static_cast<size_t>(i)] = static_cast<unsigned char>(v >> (8 * i));
}

std::string hex(const unsigned char* d, unsigned n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < n; ++i) out += {kDigits[d[i] >> 4], kDigits[d[i] & 15]};
  return out;
}

// SHA-256 of a 32 bpp RGB Pix: width, height, depth, then each pixel as 0xRRGGBB00 little-endian.
std::string sha256_rgb(const Pix* p) {
  Pix* s = const_cast<Pix*>(p);
  const uint32_t w = static_cast<uint32_t>(pixGetWidth(s)), h = static_cast<uint32_t>(pixGetHeight(s));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return {};
  std::array<unsigned char, 4> word;
  for (uint32_t v : {w, h, 32u}) put_le32(word, v), EVP_DigestUpdate(ctx.get(), word.data(), word.size());
  std::vector<unsigned char> row(static_cast<size_t>(w) * 4);
  const l_uint32* data = pixGetData(s);
  const size_t wpl = static_cast<size_t>(pixGetWpl(s));
  for (uint32_t y = 0; y < h; ++y) {
    for (uint32_t x = 0; x < w; ++x) {
      const uint32_t px = data[y * wpl + x] & kWhite;
      for (int i = 0; i < 4; ++i) row[x * 4 + static_cast<size_t>(i)] = static_cast<unsigned char>(px >> (8 * i));
    }
    EVP_DigestUpdate(ctx.get(), row.data(), row.size());
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest, &n) != 1) return {};
  return hex(digest, n);
}

}  // namespace

Format sniff(std::string_view b) {
  if (starts_with(b, "\x89PNG\r\n\x1a\n")) return Format::Png;
  if (starts_with(b, "\xFF\xD8\xFF")) return Format::Jpeg;
  if (starts_with(b, "GIF87a") || starts_with(b, "GIF89a")) return Format::Gif;
  if (starts_with(b, "BM")) return Format::Bmp;
  if (starts_with(b, std::string_view("II*\0", 4)) || starts_with(b, std::string_view("MM\0*", 4))) return Format::Tiff;
  if (b.size() >= 12 && starts_with(b, "RIFF") && b.substr(8, 4) == "WEBP") return Format::Webp;
  if (is_pnm(b)) return Format::Pnm;
  return Format::Unknown;
}

std::string_view format_name(Format f) {
  switch (f) {
    case Format::Png: return "png";
    case Format::Jpeg: return "jpeg";
    case Format::Gif: return "gif";
    case Format::Bmp: return "bmp";
    case Format::Tiff: return "tiff";
    case Format::Webp: return "webp";
    case Format::Pnm: return "pnm";
    default: return "unknown";
  }
}

Format declared_format(std::string_view content_type) {
  const std::string t = lower_trimmed(content_type.substr(0, content_type.find(';')));
  if (t == "image/png") return Format::Png;
  if (t == "image/jpeg" || t == "image/jpg" || t == "image/pjpeg") return Format::Jpeg;
  if (t == "image/gif") return Format::Gif;
  if (t == "image/bmp" || t == "image/x-bmp" || t == "image/x-ms-bmp") return Format::Bmp;
  if (t == "image/tiff") return Format::Tiff;
  if (t == "image/webp") return Format::Webp;
  if (t == "image/x-portable-anymap" || t == "image/x-portable-bitmap" || t == "image/x-portable-graymap" ||
      t == "image/x-portable-pixmap")
    return Format::Pnm;
  return Format::Unknown;
}

std::string_view status_name(Status s) {
  switch (s) {
    case Status::Ok: return "ok";
    case Status::TooSmall: return "too_small";
    case Status::TooLarge: return "too_large";
    case Status::Corrupt: return "corrupt";
    case Status::Unsupported: return "unsupported";
  }
  return "corrupt";
}

void PixDeleter::operator()(Pix* p) const { pixDestroy(&p); }

// Some Leptonica 1.82 readers print through lept_stderr() whatever the severity (pixReadMemBmp's
// "removing opaque cmap"), so its stderr handler is replaced as well.
void quiet_leptonica() {
  static std::once_flag once;
  std::call_once(once, [] {
    setMsgSeverity(L_SEVERITY_NONE);
    leptSetStderrHandler([](const char*) {});
  });
}

Decoded decode(std::string_view bytes, const Guards& g) {
  quiet_leptonica();
  Decoded d;
  d.format = sniff(bytes);
  if (d.format == Format::Gif) return gif::decode(bytes, g);
  if (d.format == Format::Unknown) return refuse(std::move(d), Status::Unsupported, "not an image format read here");
  return decode_still(bytes, g, std::move(d));
}

PixPtr prepare(const Pix* p, unsigned upscale_below) {
  if (!p) return {};
  PixPtr grey = grey8(p);
  if (!grey) return {};
  const unsigned shorter = static_cast<unsigned>(std::min(pixGetWidth(grey.get()), pixGetHeight(grey.get())));
  if (upscale_below && shorter < upscale_below) grey.reset(pixScaleGrayLI(grey.get(), 2.0f, 2.0f));
  if (!grey) return {};
  return PixPtr(pixAddBorder(grey.get(), kBorder, 255));
}

std::string pixel_hash(const Pix* p) {
  if (!p) return {};
  Pix* s = const_cast<Pix*>(p);
  if (pixGetDepth(s) == 32 && pixGetSpp(s) != 4 && !pixGetColormap(s)) return sha256_rgb(p);
  PixPtr rgb = flat_rgb(p);
  return rgb ? sha256_rgb(rgb.get()) : std::string{};
}

uint64_t dhash(const Pix* p) {
  if (!p) return 0;
  PixPtr grey = grey8(p);
  PixPtr thumb(grey ? pixScaleToSize(grey.get(), 9, 8) : nullptr);
  if (!thumb || pixGetDepth(thumb.get()) != 8) return 0;
  uint64_t bits = 0;
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) {
      l_uint32 left = 0, right = 0;
      pixGetPixel(thumb.get(), x, y, &left);
      pixGetPixel(thumb.get(), x + 1, y, &right);
      bits = bits << 1 | (left > right ? 1 : 0);
    }
  return bits;
}

}  // namespace filters::image
