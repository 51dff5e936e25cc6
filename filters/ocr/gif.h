// Private to mximage: every frame of a GIF read with giflib, recomposed on a white canvas with the
// disposal methods, and the OCR views built from the full frames (image.h, Decoded::views).
// Same contract as image::decode(): guards before allocation, never a crash on hostile bytes.
#pragma once
#include <string_view>

#include "filters/ocr/image.h"

namespace filters::image::gif {

Decoded decode(std::string_view bytes, const Guards& g);

}  // namespace filters::image::gif
