// The ocr filter's descriptor (filters/descriptor.h).
#pragma once
#include "filters/descriptor.h"

namespace filters::ocr {
Descriptor descriptor();
}
