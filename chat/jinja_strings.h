// Python `str` semantics over UTF-8 text: code-point indexing, whitespace, strip/split/splitlines,
// case mapping and repr(). Templates are written against Python strings, so "length", "index" and
// "whitespace" mean what Python means by them, not bytes.
//
// Everything here is pure and thread-safe. Internal to tandem_chat.
#ifndef TANDEM_CHAT_JINJA_STRINGS_H_
#define TANDEM_CHAT_JINJA_STRINGS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tandem::jinja {

// Returns the byte offset of the first malformed UTF-8 sequence, or nullopt when `text` is valid.
std::optional<size_t> FindInvalidUtf8(std::string_view text);

// Appends the UTF-8 encoding of `code_point`; surrogates and values past U+10FFFF become U+FFFD.
void AppendUtf8(char32_t code_point, std::string* out);

// Decodes the code point at text[*pos] and advances *pos; a malformed byte decodes as U+FFFD and
// advances by one, so loops over any input terminate.
char32_t NextCodePoint(std::string_view text, size_t* pos);

std::u32string DecodeUtf8(std::string_view text);
std::string EncodeUtf8(std::u32string_view code_points);

bool IsAscii(std::string_view text);
// len(s) in Python: the number of code points.
size_t CodePointCount(std::string_view text);

// str.isspace() for one code point (also what Python's regex \s matches).
bool IsPythonSpace(char32_t c);

enum class StripSide { kLeft, kRight, kBoth };
// str.strip/lstrip/rstrip: `chars` is the set of code points to remove; nullopt means whitespace.
std::string PyStrip(std::string_view text, StripSide side, const std::optional<std::string>& chars);

// str.split(sep, maxsplit): no `sep` splits on whitespace runs and drops empty parts. maxsplit < 0
// means no limit. `sep` must not be empty (the caller reports Python's ValueError).
std::vector<std::string> PySplit(std::string_view text, const std::optional<std::string>& sep, int64_t maxsplit);
// str.rsplit(sep, maxsplit).
std::vector<std::string> PyRSplit(std::string_view text, const std::optional<std::string>& sep, int64_t maxsplit);
// str.splitlines(keepends): splits on \n, \r, \r\n, \v, \f, \x1c-\x1e, \x85, U+2028 and U+2029.
std::vector<std::string> PySplitLines(std::string_view text, bool keepends);

// str.replace(old, new, count); count < 0 replaces all. An empty `old` inserts `new` between code
// points, as Python does.
std::string PyReplace(std::string_view text, std::string_view old_text, std::string_view new_text, int64_t count);

// Case mapping with the C.UTF-8 locale's simple case tables (ASCII-only when that locale is absent).
std::string PyUpper(std::string_view text);
std::string PyLower(std::string_view text);
std::string PyTitle(std::string_view text);       // str.title()
std::string PyCapitalize(std::string_view text);  // str.capitalize()
bool IsUpperCodePoint(char32_t c);
bool IsLowerCodePoint(char32_t c);
bool IsAlphaCodePoint(char32_t c);
bool IsDigitCodePoint(char32_t c);

// repr(str): single quotes unless the text holds ' and no ", escapes for \\, the quote, \t \n \r
// and non-printable code points (\xNN, \uNNNN, \UNNNNNNNN).
std::string PyRepr(std::string_view text);

// Python float repr(): the shortest text that round-trips, fixed notation for exponents in
// [-4, 16), "1e+16" style otherwise, always with a '.' or an exponent ("1.0"); nan, inf, -inf.
std::string PyFloatRepr(double value);

// Code-point slice [start, stop) with step, indices already normalized to the string's length.
std::string SliceCodePoints(std::string_view text, int64_t start, int64_t stop, int64_t step);

}  // namespace tandem::jinja

#endif  // TANDEM_CHAT_JINJA_STRINGS_H_
