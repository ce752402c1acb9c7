#include "sink_filter.h"

#include <algorithm>

namespace hdb {

bool SinkFilter::takesTable(std::string_view key) const {
  return tables_.empty() || std::find(tables_.begin(), tables_.end(), key) != tables_.end();
}

bool SinkFilter::takesOp(std::string_view op) const {
  return ops_.empty() || op == "gap" || std::find(ops_.begin(), ops_.end(), op) != ops_.end();
}

}  // namespace hdb
