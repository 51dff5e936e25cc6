// The rules filter's descriptor (filters/descriptor.h).
#pragma once
#include "filters/descriptor.h"

namespace filters::rules {
Descriptor descriptor();
}
