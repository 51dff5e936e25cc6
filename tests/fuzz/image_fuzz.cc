// libFuzzer target for filters::image (filters/ocr/image.h): arbitrary bytes decoded under tight
// guards (every format by its magic; GIFs frame by frame with giflib), then each view prepared and
// hashed as the OCR filter does. Beyond "no crash, no leak, no UB": Ok iff there are views; the guards
// hold (pixels, decoded bytes, frames, stacked frames); the views have the sizes the contract gives.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <leptonica/allheaders.h>

#include "filters/ocr/image.h"

namespace {

using namespace filters::image;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

Guards fuzz_guards() {
  Guards g;
  g.max_pixels = 1 << 20;
  g.min_width = 1;
  g.min_height = 1;
  g.max_decoded_bytes = 32ull << 20;
  g.max_frames = 16;
  g.max_stacked = 4;
  return g;
}

void check_views(const Decoded& d, const Guards& g) {
  const int w = static_cast<int>(d.width), h = static_cast<int>(d.height);
  for (const PixPtr& v : d.views) check(v != nullptr);
  check(pixGetWidth(d.views[0].get()) == w && pixGetHeight(d.views[0].get()) == h);
  if (d.format != Format::Gif) {
    check(d.frames == 1 && d.views.size() == 1);
    return;
  }
  check(d.frames >= 1 && d.frames <= g.max_frames && d.views.size() <= 2);
  if (d.views.size() == 2) {  // the stack: 2..max_stacked full frames with 10 px gaps
    const int sh = pixGetHeight(d.views[1].get());
    check(pixGetWidth(d.views[1].get()) == w && (sh + 10) % (h + 10) == 0);
    const int n = (sh + 10) / (h + 10);
    check(n >= 2 && static_cast<unsigned>(n) <= g.max_stacked && static_cast<unsigned>(n) <= d.frames);
  }
}

void check_prepared(const Pix* view) {
  PixPtr p = prepare(view, 64);
  check(p != nullptr && pixGetDepth(p.get()) == 8);
  const int w = pixGetWidth(const_cast<Pix*>(view)), h = pixGetHeight(const_cast<Pix*>(view));
  const int scale = std::min(w, h) < 64 ? 2 : 1;
  check(pixGetWidth(p.get()) == scale * w + 20 && pixGetHeight(p.get()) == scale * h + 20);
  check(pixel_hash(view).size() == 64);
  (void)dhash(view);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const Guards g = fuzz_guards();
  (void)declared_format(bytes.substr(0, 64));
  Decoded d = decode(bytes, g);
  check(!status_name(d.status).empty() && !format_name(d.format).empty());
  check(d.decoded_bytes <= g.max_decoded_bytes);
  check((d.status == Status::Ok) == !d.views.empty());
  if (d.status != Status::Ok) return 0;
  check(d.format == sniff(bytes) && d.format != Format::Unknown);
  check(uint64_t{d.width} * d.height <= g.max_pixels && d.width >= g.min_width && d.height >= g.min_height);
  check_views(d, g);
  for (const PixPtr& v : d.views) check_prepared(v.get());
  return 0;
}
