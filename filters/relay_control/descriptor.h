// The relay_control filter's descriptor (filters/descriptor.h).
#pragma once
#include "filters/descriptor.h"

namespace filters::relay_control {
Descriptor descriptor();
}
