// Indents (and optionally colours) one JSON text for a human at a terminal:
// `hdb-bridge tail --pretty`. Pure text work, no lws.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hdb {

// Two-space indentation, "key": value, empty {} and [] kept on one line.
// With `color`, ANSI colours: keys blue, strings green, numbers yellow,
// true/false/null magenta. Returns nullopt when `json` is not one valid JSON
// value (the caller prints it as it is).
std::optional<std::string> prettyJson(std::string_view json, bool color);

// The value of the top-level "op" field of a JSON object line, if any.
std::optional<std::string> jsonOp(std::string_view json);

}  // namespace hdb
