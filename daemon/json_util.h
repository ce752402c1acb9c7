// simdjson on-demand helpers shared by the frame parsers (hdb4_frame, sc_codec,
// hdb3_txn): a validating walk, and raw spans of values that are known to be
// valid JSON, so envelopes can copy server text without re-encoding it.
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>

namespace hdb::json {

namespace od = simdjson::ondemand;

// Nesting deeper than this is refused (a record is not that deep; a hostile peer might be).
inline constexpr int kMaxDepth = 64;

// On-demand parsing does not check the text of values it skips, so a value that
// is copied out is walked completely: every string, number and literal is decoded once.
simdjson::error_code validate(od::value v, int depth = 0);

// Walks `v` (a value inside an object or array of `doc`, never the document's
// last token) and sets `out` to its raw text, trailing whitespace removed.
simdjson::error_code validatedSpan(od::document& doc, od::value v, std::string_view& out);

std::string_view trimRight(std::string_view s);

// Grows `s` so that a parser can read SIMDJSON_PADDING bytes past its end.
void reservePadding(std::string& s);

// The padded input for `text`, which lies inside a buffer whose allocation ends at
// `bufferEnd` (at least SIMDJSON_PADDING bytes past the text): sub-documents of a
// message are parsed in place.
inline simdjson::padded_string_view paddedView(std::string_view text, const char* bufferEnd) {
  return simdjson::padded_string_view(text.data(), text.size(), size_t(bufferEnd - text.data()));
}

}  // namespace hdb::json
