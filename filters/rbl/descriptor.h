// The rbl filter's descriptor (filters/descriptor.h): DNS blocklists, RHSBL and DNSWL zones.
#pragma once
#include "filters/descriptor.h"

namespace filters::rbl {
Descriptor descriptor();
}
