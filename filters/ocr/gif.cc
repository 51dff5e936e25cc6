// GIF frames with giflib's record loop (never DGifSlurp, which decodes every frame at once): each
// frame is drawn on a white RGB canvas the size of the logical screen and its disposal applied after
// it was shown; the canvas after each frame is a "full frame". Counted against max_decoded_bytes:
// the canvas, the restore-previous backup, each decoded row of indices (the frame's width), each
// distinct full frame kept, and the stack view.
#include "filters/ocr/gif.h"

#include <gif_lib.h>
#include <leptonica/allheaders.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

namespace filters::image::gif {
namespace {

constexpr uint32_t kWhite = 0xffffff00;  // Leptonica RGB words are 0xRRGGBBAA
constexpr int kGap = 10;                 // white rows between stacked frames

struct Source {
  const uint8_t* data;
  size_t size;
  size_t pos = 0;
};

int read_source(GifFileType* f, GifByteType* out, int len) {
  auto* s = static_cast<Source*>(f->UserData);
  if (len <= 0) return 0;
  size_t n = std::min(static_cast<size_t>(len), s->size - s->pos);
  if (n) std::memcpy(out, s->data + s->pos, n);
  s->pos += n;
  return static_cast<int>(n);
}

struct GifCloser {
  void operator()(GifFileType* f) const {
    int err = 0;
    DGifCloseFile(f, &err);
  }
};
using GifPtr = std::unique_ptr<GifFileType, GifCloser>;

std::string gif_error(int code) {
  const char* s = GifErrorString(code);
  return s ? s : "giflib error " + std::to_string(code);
}

GraphicsControlBlock no_gcb() { return {DISPOSAL_UNSPECIFIED, false, 0, NO_TRANSPARENT_COLOR}; }

// Decoded pixel octets so far; refuses what would pass the guard.
class Budget {
 public:
  explicit Budget(uint64_t max) : max_(max) {}
  bool take(uint64_t n) {
    if (n > max_ - used_) return false;
    used_ += n;
    return true;
  }
  uint64_t used() const { return used_; }

 private:
  uint64_t max_, used_ = 0;
};

struct Rect {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  bool empty() const { return x0 >= x1 || y0 >= y1; }
};

// The part of a frame on the screen: empty for a zero-sized or off-screen frame.
Rect clip(const GifImageDesc& d, int sw, int sh) {
  return {std::max(d.Left, 0), std::max(d.Top, 0), std::min(d.Left + d.Width, sw), std::min(d.Top + d.Height, sh)};
}

// The frame row of the k-th row in the data: interlaced rows come in passes 0/8, 4/8, 2/4, 1/2.
int frame_row(int k, int height, bool interlaced) {
  if (!interlaced) return k;
  static constexpr int kStart[4] = {0, 4, 2, 1}, kStep[4] = {8, 8, 4, 2};
  for (int p = 0; p < 4; ++p) {
    int rows = height > kStart[p] ? (height - kStart[p] + kStep[p] - 1) / kStep[p] : 0;
    if (k < rows) return kStart[p] + k * kStep[p];
    k -= rows;
  }
  return -1;
}

// The index in the data of the last row that lands on the screen (rows after it are skipped).
int last_needed_row(const GifImageDesc& d, const Rect& r) {
  if (!d.Interlace) return r.y1 - 1 - d.Top;
  int last = -1;
  for (int k = 0; k < d.Height; ++k) {
    int y = d.Top + frame_row(k, d.Height, true);
    if (y >= r.y0 && y < r.y1) last = k;
  }
  return last;
}

struct Distinct {  // one distinct full frame
  std::string hash;
  PixPtr pix;
  uint64_t shown = 0;  // total delay of the frames that showed it
  size_t first = 0;    // the first frame that showed it
};

struct Shown {  // one frame: which distinct full frame it showed, and for how long
  size_t distinct;
  int delay;
};

class Recomposer {
 public:
  Recomposer(GifFileType* gif, const Guards& g)
      : gif_(gif), g_(g), budget_(g.max_decoded_bytes), sw_(gif->SWidth), sh_(gif->SHeight),
        canvas_bytes_(4ull * static_cast<uint64_t>(sw_) * static_cast<uint64_t>(sh_)) {}
  Decoded run();

 private:
  enum class Step { Next, End, Error, TooLarge };
  Step record();
  Step extension();
  Step frame();
  Step save_backup();
  Step draw(const GifImageDesc& d, const ColorMapObject& cmap, const Rect& r);
  bool skip_data();
  void paint_row(int y, const GifImageDesc& d, const ColorMapObject& cmap, const Rect& r);
  void fill_white(const Rect& r);
  Step show();
  void dispose(const Rect& r);
  std::vector<size_t> stacked() const;
  Step stack(PixPtr& out);
  size_t dominant() const;
  Decoded finish(Step last);
  Step fail(Step s, std::string why) {
    detail_ = std::move(why);
    return s;
  }

  GifFileType* gif_;
  const Guards& g_;
  Budget budget_;
  int sw_, sh_;
  uint64_t canvas_bytes_;
  PixPtr canvas_, backup_;
  std::vector<GifByteType> line_;
  GraphicsControlBlock gcb_ = no_gcb();  // applies to the next frame only
  std::vector<Shown> frames_;
  std::vector<Distinct> distinct_;
  std::string detail_;
};

Decoded Recomposer::run() {
  Step s = Step::Next;
  if (!budget_.take(canvas_bytes_) || !(canvas_ = PixPtr(pixCreateNoInit(sw_, sh_, 32))))
    return finish(fail(Step::TooLarge, "no room for the canvas"));
  pixSetAllArbitrary(canvas_.get(), kWhite);
  const size_t max_frames = std::max(g_.max_frames, 1u);
  while (s == Step::Next && frames_.size() < max_frames) s = record();
  return finish(s);
}

Recomposer::Step Recomposer::record() {
  GifRecordType type = UNDEFINED_RECORD_TYPE;
  if (DGifGetRecordType(gif_, &type) == GIF_ERROR) return fail(Step::Error, gif_error(gif_->Error));
  switch (type) {
    case IMAGE_DESC_RECORD_TYPE: return frame();
    case EXTENSION_RECORD_TYPE: return extension();
    case TERMINATE_RECORD_TYPE: return Step::End;
    default: return fail(Step::Error, "unknown record type");
  }
}

Recomposer::Step Recomposer::extension() {
  int code = 0;
  GifByteType* block = nullptr;
  if (DGifGetExtension(gif_, &code, &block) == GIF_ERROR) return fail(Step::Error, gif_error(gif_->Error));
  if (code == GRAPHICS_EXT_FUNC_CODE && block && block[0] == 4) DGifExtensionToGCB(block[0], block + 1, &gcb_);
  while (block)
    if (DGifGetExtensionNext(gif_, &block) == GIF_ERROR) return fail(Step::Error, gif_error(gif_->Error));
  return Step::Next;
}

Recomposer::Step Recomposer::frame() {
  if (DGifGetImageDesc(gif_) == GIF_ERROR) return fail(Step::Error, gif_error(gif_->Error));
  const GifImageDesc d = gif_->Image;
  const ColorMapObject* cmap = d.ColorMap ? d.ColorMap : gif_->SColorMap;
  if (!cmap || !cmap->Colors || cmap->ColorCount <= 0) return fail(Step::Error, "a frame without a colour map");
  const Rect r = clip(d, sw_, sh_);
  Step s = Step::Next;
  if (gcb_.DisposalMode == DISPOSE_PREVIOUS && !r.empty()) s = save_backup();
  if (s == Step::Next) s = draw(d, *cmap, r);
  if (s == Step::Next) s = show();
  if (s != Step::Next) return s;
  dispose(r);
  gcb_ = no_gcb();
  return Step::Next;
}

Recomposer::Step Recomposer::save_backup() {
  if (!backup_ && !budget_.take(canvas_bytes_)) return fail(Step::TooLarge, "no room for the restore-previous backup");
  Pix* copy = pixCopy(backup_.get(), canvas_.get());
  if (!copy) return fail(Step::TooLarge, "restore-previous backup not allocated");
  if (!backup_) backup_.reset(copy);
  return Step::Next;
}

Recomposer::Step Recomposer::draw(const GifImageDesc& d, const ColorMapObject& cmap, const Rect& r) {
  if (r.empty()) return skip_data() ? Step::Next : fail(Step::Error, gif_error(gif_->Error));
  const int last = last_needed_row(d, r);
  line_.resize(static_cast<size_t>(d.Width));
  for (int k = 0; k <= last; ++k) {
    if (!budget_.take(static_cast<uint64_t>(d.Width))) return fail(Step::TooLarge, "frame rows past max_decoded_bytes");
    if (DGifGetLine(gif_, line_.data(), d.Width) == GIF_ERROR) return fail(Step::Error, gif_error(gif_->Error));
    const int y = d.Top + frame_row(k, d.Height, d.Interlace);
    if (y >= r.y0 && y < r.y1) paint_row(y, d, cmap, r);
  }
  if (last + 1 < d.Height && !skip_data()) return fail(Step::Error, gif_error(gif_->Error));
  return Step::Next;
}

// Skips the rest of a frame's LZW sub-blocks without decoding them.
bool Recomposer::skip_data() {
  GifByteType* block = nullptr;
  do {
    if (DGifGetCodeNext(gif_, &block) == GIF_ERROR) return false;
  } while (block);
  return true;
}

void Recomposer::paint_row(int y, const GifImageDesc& d, const ColorMapObject& cmap, const Rect& r) {
  uint32_t* row = pixGetData(canvas_.get()) + static_cast<size_t>(y) * pixGetWpl(canvas_.get());
  for (int x = r.x0; x < r.x1; ++x) {
    const int index = line_[static_cast<size_t>(x - d.Left)];
    if (index == gcb_.TransparentColor || index >= cmap.ColorCount) continue;
    const GifColorType& c = cmap.Colors[index];
    row[x] = uint32_t{c.Red} << 24 | uint32_t{c.Green} << 16 | uint32_t{c.Blue} << 8;
  }
}

void Recomposer::fill_white(const Rect& r) {
  for (int y = r.y0; y < r.y1; ++y) {
    uint32_t* row = pixGetData(canvas_.get()) + static_cast<size_t>(y) * pixGetWpl(canvas_.get());
    std::fill(row + r.x0, row + r.x1, kWhite);
  }
}

// The canvas is now on screen: a full frame, kept once per distinct picture.
Recomposer::Step Recomposer::show() {
  std::string hash = pixel_hash(canvas_.get());
  auto it = std::find_if(distinct_.begin(), distinct_.end(), [&](const Distinct& f) { return f.hash == hash; });
  if (it == distinct_.end()) {
    if (!budget_.take(canvas_bytes_)) return fail(Step::TooLarge, "full frames past max_decoded_bytes");
    PixPtr copy(pixCopy(nullptr, canvas_.get()));
    if (!copy) return fail(Step::TooLarge, "full frame not allocated");
    distinct_.push_back({std::move(hash), std::move(copy), 0, frames_.size()});
    it = distinct_.end() - 1;
  }
  const int delay = std::max(gcb_.DelayTime, 0);
  it->shown += static_cast<uint64_t>(delay);
  frames_.push_back({static_cast<size_t>(it - distinct_.begin()), delay});
  return Step::Next;
}

void Recomposer::dispose(const Rect& r) {
  if (r.empty()) return;
  if (gcb_.DisposalMode == DISPOSE_BACKGROUND) fill_white(r);
  if (gcb_.DisposalMode == DISPOSE_PREVIOUS && backup_) pixCopy(canvas_.get(), backup_.get());
}

// The distinct full frames to stack: the longest shown (the later of equals), in frame order.
std::vector<size_t> Recomposer::stacked() const {
  std::vector<size_t> pick(distinct_.size());
  std::iota(pick.begin(), pick.end(), size_t{0});
  if (pick.size() > g_.max_stacked) {
    std::stable_sort(pick.begin(), pick.end(), [&](size_t a, size_t b) {
      return distinct_[a].shown != distinct_[b].shown ? distinct_[a].shown > distinct_[b].shown : a > b;
    });
    pick.resize(g_.max_stacked);
    std::sort(pick.begin(), pick.end());
  }
  return pick;
}

Recomposer::Step Recomposer::stack(PixPtr& out) {
  const std::vector<size_t> pick = stacked();
  if (pick.size() < 2) return Step::Next;
  const uint64_t height = pick.size() * static_cast<uint64_t>(sh_) + (pick.size() - 1) * kGap;
  if (height > INT_MAX || !budget_.take(4ull * static_cast<uint64_t>(sw_) * height))
    return fail(Step::TooLarge, "stacked frames past max_decoded_bytes");
  out.reset(pixCreateNoInit(sw_, static_cast<int>(height), 32));
  if (!out) return fail(Step::TooLarge, "stack not allocated");
  pixSetAllArbitrary(out.get(), kWhite);
  int y = 0;
  for (size_t i : pick) {
    pixRasterop(out.get(), 0, y, sw_, sh_, PIX_SRC, distinct_[i].pix.get(), 0, 0);
    y += sh_ + kGap;
  }
  return Step::Next;
}

// The frame shown longest; the later of equals (the final composite when all delays are equal).
size_t Recomposer::dominant() const {
  size_t best = 0;
  for (size_t i = 1; i < frames_.size(); ++i)
    if (frames_[i].delay >= frames_[best].delay) best = i;
  return frames_[best].distinct;
}

Decoded Recomposer::finish(Step last) {
  Decoded out;
  out.format = Format::Gif;
  out.width = static_cast<unsigned>(sw_);
  out.height = static_cast<unsigned>(sh_);
  out.frames = static_cast<unsigned>(frames_.size());
  PixPtr stack_view;
  if (last != Step::TooLarge && !frames_.empty()) last = stack(stack_view) == Step::TooLarge ? Step::TooLarge : last;
  out.decoded_bytes = budget_.used();
  if (last == Step::TooLarge || frames_.empty()) {
    out.status = last == Step::TooLarge ? Status::TooLarge : Status::Corrupt;
    out.detail = detail_.empty() ? "no frame" : detail_;
    return out;
  }
  if (last == Step::Error) out.detail = "stopped after frame " + std::to_string(frames_.size()) + ": " + detail_;
  out.views.push_back(std::move(distinct_[dominant()].pix));
  if (stack_view) out.views.push_back(std::move(stack_view));
  out.status = Status::Ok;
  return out;
}

Decoded refuse(Status s, std::string why, const GifFileType* gif) {
  Decoded out;
  out.status = s;
  out.detail = std::move(why);
  out.format = Format::Gif;
  if (gif) {
    out.width = static_cast<unsigned>(std::max(gif->SWidth, 0));
    out.height = static_cast<unsigned>(std::max(gif->SHeight, 0));
  }
  return out;
}

// The logical screen against the guards, before the canvas is allocated.
Decoded screen_guard(const GifFileType& gif, const Guards& g) {
  const uint64_t w = static_cast<uint64_t>(std::max(gif.SWidth, 0));
  const uint64_t h = static_cast<uint64_t>(std::max(gif.SHeight, 0));
  const std::string dims = std::to_string(w) + "x" + std::to_string(h);
  if (w * h > g.max_pixels) return refuse(Status::TooLarge, "screen " + dims + " is more than max_pixels", &gif);
  if (w < g.min_width || h < g.min_height) return refuse(Status::TooSmall, "screen " + dims, &gif);
  if (4 * w * h > g.max_decoded_bytes)
    return refuse(Status::TooLarge, "canvas " + dims + " past max_decoded_bytes", &gif);
  return refuse(Status::Ok, "", &gif);
}

}  // namespace

Decoded decode(std::string_view bytes, const Guards& g) {
  Source src{reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
  int err = 0;
  GifPtr gif(DGifOpen(&src, read_source, &err));
  if (!gif) return refuse(Status::Corrupt, gif_error(err), nullptr);
  if (Decoded screen = screen_guard(*gif, g); screen.status != Status::Ok) return screen;
  return Recomposer(gif.get(), g).run();
}

}  // namespace filters::image::gif
