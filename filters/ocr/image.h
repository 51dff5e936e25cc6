// Image parts for OCR: content sniffing, guarded decoding with Leptonica (giflib for every frame of
// an animated GIF, recomposed with its disposal methods), light preprocessing and hashes.
// Contract: pure functions of their input, thread-safe, no Asio (fuzzable); a hostile image is
// refused by a guard (Status) before it is decoded when its header says it is too big, and never
// crashes or allocates past Guards::max_decoded_bytes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct Pix;  // Leptonica

namespace filters::image {

enum class Format { Unknown, Png, Jpeg, Gif, Bmp, Tiff, Webp, Pnm };
Format sniff(std::string_view bytes);                  // by the magic bytes, never by a name
std::string_view format_name(Format f);                // "png", "jpeg", ..., "unknown"
// The format a Content-Type names ("image/png" -> Png; "image/jpg", "image/pjpeg" -> Jpeg;
// parameters and case ignored); Unknown when it names no image format.
Format declared_format(std::string_view content_type);

struct PixDeleter {
  void operator()(Pix* p) const;
};
using PixPtr = std::unique_ptr<Pix, PixDeleter>;

struct Guards {
  uint64_t max_pixels = 16'000'000;            // width*height of an image or GIF screen; larger: TooLarge
  unsigned min_width = 24;                     // smaller images are not worth reading (tracking
  unsigned min_height = 12;                    //   pixels, spacers): TooSmall
  uint64_t max_decoded_bytes = 64ull << 20;    // decoded pixel octets for this call, all frames; past it: TooLarge
  unsigned max_frames = 64;                    // GIF frames decoded; later frames are ignored
  unsigned max_stacked = 8;                    // distinct GIF frames stacked into one view
};

enum class Status { Ok, TooSmall, TooLarge, Corrupt, Unsupported };
std::string_view status_name(Status s);        // "ok", "too_small", "too_large", "corrupt", "unsupported"

struct Decoded {
  Status status = Status::Corrupt;
  std::string detail;                          // why it was refused, for the log
  Format format = Format::Unknown;
  unsigned width = 0, height = 0;              // the image, or the GIF's logical screen
  unsigned frames = 0;                         // 1 for a still image; GIF frames decoded
  uint64_t decoded_bytes = 0;                  // pixel octets decoded (counted against the guard)
  // What to OCR, most telling first (empty unless Ok):
  //  * a still image: the image itself;
  //  * an animated GIF: the dominant full frame (composited with the disposal methods; the one
  //    shown longest, the last of equals), then, when there is more than one distinct full frame,
  //    the distinct full frames (at most max_stacked, the longest-shown) stacked vertically with a
  //    white gap, so one OCR run reads words spread across frames.
  std::vector<PixPtr> views;
};

Decoded decode(std::string_view bytes, const Guards& g);

// Preprocessing for Tesseract: 8-bit grey by luminance (colour text on colour backgrounds defeats
// Tesseract's own thresholding), a 10 px white border (text touching the edge is lost otherwise),
// and a 2x upscale when the shorter side is below `upscale_below` px (0 = never).
PixPtr prepare(const Pix* p, unsigned upscale_below);

// Exact cache key: SHA-256 (hex) of width, height, depth and the pixel rows (row padding excluded),
// so the same picture re-sent in another container or with other metadata hits.
std::string pixel_hash(const Pix* p);
// Perceptual key: 64-bit difference hash of a 9x8 grey thumbnail; equal for most re-encoded or
// rescaled copies of a picture.
uint64_t dhash(const Pix* p);

// Leptonica prints every decoding error to stderr; this silences it once per process (thread-safe).
void quiet_leptonica();

}  // namespace filters::image
