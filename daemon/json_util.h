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

// Checks that `text` starts with one complete JSON value, in one pass without
// recursion: the grammar, every string and its escapes, every number and literal,
// nesting at most kMaxDepth deep. Sets `length` to the value's size. UTF-8 is not
// checked again: `text` must lie in a document simdjson's iterate() accepted,
// which validated the UTF-8 of the whole document (and refused unescaped control
// characters in strings; they are checked here too).
simdjson::error_code scanValue(std::string_view text, size_t& length);

// The raw text of `v`, a value inside an object or array of a document whose
// text ends at `docEnd`, checked by scanValue (not walked through `v`, which
// stays unconsumed: the document's iterator skips it). OUT_OF_BOUNDS when the
// document ends after it: its enclosing object or array is never closed.
simdjson::error_code scannedSpan(od::value v, const char* docEnd, std::string_view& out);

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
