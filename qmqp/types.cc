// QMQP value types: printable names.
#include "qmqp/types.h"

namespace qmqp {

std::string Server::name() const {
  std::string h = host.find(':') == std::string::npos ? host : "[" + host + "]";
  return h + ":" + std::to_string(port);
}

}  // namespace qmqp
