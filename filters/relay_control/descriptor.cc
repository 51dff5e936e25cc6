// The relay_control filter as the program sees it: no section of its own (relay.local_domains and
// the directory are the core's); built on the generation's directory.
#include "filters/relay_control/descriptor.h"

#include "filters/relay_control/relay_control.h"

namespace filters::relay_control {

Descriptor descriptor() {
  Descriptor d;
  d.schema.name = "relay_control";
  d.schema.defaults = {config::Seconds(30), config::OnError::TempFail};
  d.schema.accepts_recipients = true;  // a profile without it refuses every recipient
  d.build = [](const BuildContext& b) -> Built {
    return {std::make_shared<RelayControl>(b.config->local_domains, b.directory, b.config->postmaster), {}};
  };
  return d;
}

}  // namespace filters::relay_control
