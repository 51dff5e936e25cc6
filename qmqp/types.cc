// QMQP value types: printable names.
#include "qmqp/types.h"

#include "core/host_port.h"

namespace qmqp {

std::string Server::name() const { return core::HostPort{host, port}.str(); }

}  // namespace qmqp
