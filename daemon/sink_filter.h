// A sink's routing rules: which tables (`tables:`) and which ops (`ops:`) it
// takes. Tables are decided once per route; ops per change. Gap lines (op
// "gap") always pass: a consumer must learn that it missed data whatever it
// filters on.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hdb {

class SinkFilter {
 public:
  SinkFilter(std::vector<std::string> tables, std::vector<std::string> ops)
      : tables_(std::move(tables)), ops_(std::move(ops)) {}

  // `key` is "database.table"; an empty list takes every table.
  bool takesTable(std::string_view key) const;
  // An empty list takes every op.
  bool takesOp(std::string_view op) const;

 private:
  std::vector<std::string> tables_;
  std::vector<std::string> ops_;
};

}  // namespace hdb
