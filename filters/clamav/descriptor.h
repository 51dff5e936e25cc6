// The clamav filter's descriptor (filters/descriptor.h).
#pragma once
#include "filters/descriptor.h"

#include "filters/clamav/engine.h"

namespace filters::clamav {
Descriptor descriptor();
// The engine every generation shares, null until one was built (tests, diagnostics).
std::shared_ptr<EngineHolder> shared_engine(Resources& r);
}
