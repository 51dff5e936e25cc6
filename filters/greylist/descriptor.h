// The greylist filter's descriptor (filters/descriptor.h): its [greylist] rows, build, /health, metrics.
#pragma once
#include "filters/descriptor.h"

namespace filters::greylist {
Descriptor descriptor();
}
