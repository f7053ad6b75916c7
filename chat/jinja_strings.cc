#include "chat/jinja_strings.h"

#include <locale.h>
#include <wctype.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace tandem::jinja {
namespace {

constexpr char32_t kReplacement = 0xFFFD;

// The C.UTF-8 locale for towupper_l and friends; null when the system lacks it (ASCII fallback).
locale_t Utf8Locale() {
  static const locale_t locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
  return locale;
}

char32_t ToUpper(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  locale_t locale = Utf8Locale();
  return locale ? static_cast<char32_t>(towupper_l(static_cast<wint_t>(c), locale)) : c;
}

char32_t ToLower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  locale_t locale = Utf8Locale();
  return locale ? static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), locale)) : c;
}

// Title case differs from upper case for the Latin digraphs (U+01C4..U+01CC, U+01F1..U+01F3).
char32_t ToTitle(char32_t c) {
  if (c < 0x80) return ToUpper(c);
  locale_t locale = Utf8Locale();
  if (!locale) return c;
  static const wctrans_t totitle = wctrans_l("totitle", Utf8Locale());
  return totitle ? static_cast<char32_t>(towctrans_l(static_cast<wint_t>(c), totitle, locale)) : ToUpper(c);
}

bool IsCased(char32_t c) { return ToUpper(c) != c || ToLower(c) != c; }

// Appends the upper-case (or title-case) form; German sharp s is the one full mapping that changes
// length and shows up in real text.
void AppendUpper(char32_t c, std::string* out, bool title = false) {
  if (c == 0xDF) {
    out->append(title ? "Ss" : "SS");
    return;
  }
  AppendUtf8(title ? ToTitle(c) : ToUpper(c), out);
}

// Python's str.isprintable() is false for categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs other than
// the space. This covers the code points of those categories that occur in practice.
bool IsPrintable(char32_t c) {
  if (c < 0x20 || c == 0x7F) return false;
  if (c < 0x7F) return true;
  if (c <= 0xA0 || c == 0xAD) return false;
  if (c == 0x1680 || c == 0x180E) return false;
  if (c >= 0x2000 && c <= 0x200F) return false;
  if (c >= 0x2028 && c <= 0x202F) return false;
  if (c >= 0x205F && c <= 0x206F) return false;
  if (c == 0x3000 || c == 0xFEFF) return false;
  if (c >= 0xD800 && c <= 0xF8FF) return false;  // surrogates and the private use area
  if (c >= 0xFFF9 && c <= 0xFFFB) return false;
  if (c == 0xFFFE || c == 0xFFFF) return false;
  if (c >= 0xF0000) return false;  // supplementary private use areas
  return true;
}

bool IsSpaceOrInSet(char32_t c, const std::optional<std::u32string>& set) {
  if (!set) return IsPythonSpace(c);
  return set->find(c) != std::u32string::npos;
}

bool IsLineBreak(char32_t c) {
  return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || (c >= 0x1C && c <= 0x1E) || c == 0x85 || c == 0x2028 ||
         c == 0x2029;
}

}  // namespace

std::optional<size_t> FindInvalidUtf8(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    const unsigned char lead = static_cast<unsigned char>(text[pos]);
    size_t length;
    char32_t min;
    if (lead < 0x80) {
      ++pos;
      continue;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2;
      min = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3;
      min = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4;
      min = 0x10000;
    } else {
      return pos;
    }
    if (pos + length > text.size()) return pos;
    char32_t cp = lead & (0x7F >> length);
    for (size_t i = 1; i < length; ++i) {
      const unsigned char byte = static_cast<unsigned char>(text[pos + i]);
      if ((byte & 0xC0) != 0x80) return pos;
      cp = (cp << 6) | (byte & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return pos;
    pos += length;
  }
  return std::nullopt;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = kReplacement;
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

char32_t NextCodePoint(std::string_view text, size_t* pos) {
  const unsigned char lead = static_cast<unsigned char>(text[*pos]);
  if (lead < 0x80) {
    ++*pos;
    return lead;
  }
  size_t length = (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 0;
  if (length == 0 || *pos + length > text.size()) {
    ++*pos;
    return kReplacement;
  }
  char32_t cp = lead & (0x7F >> length);
  for (size_t i = 1; i < length; ++i) {
    const unsigned char byte = static_cast<unsigned char>(text[*pos + i]);
    if ((byte & 0xC0) != 0x80) {
      ++*pos;
      return kReplacement;
    }
    cp = (cp << 6) | (byte & 0x3F);
  }
  *pos += length;
  return cp;
}

std::u32string DecodeUtf8(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) out.push_back(NextCodePoint(text, &pos));
  return out;
}

std::string EncodeUtf8(std::u32string_view code_points) {
  std::string out;
  out.reserve(code_points.size());
  for (char32_t c : code_points) AppendUtf8(c, &out);
  return out;
}

bool IsAscii(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

size_t CodePointCount(std::string_view text) {
  size_t count = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++count;
  }
  return count;
}

bool IsPythonSpace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string PyStrip(std::string_view text, StripSide side, const std::optional<std::string>& chars) {
  std::optional<std::u32string> set;
  if (chars) set = DecodeUtf8(*chars);
  const std::u32string cps = DecodeUtf8(text);
  size_t begin = 0;
  size_t end = cps.size();
  if (side != StripSide::kRight) {
    while (begin < end && IsSpaceOrInSet(cps[begin], set)) ++begin;
  }
  if (side != StripSide::kLeft) {
    while (end > begin && IsSpaceOrInSet(cps[end - 1], set)) --end;
  }
  return EncodeUtf8(std::u32string_view(cps).substr(begin, end - begin));
}

std::vector<std::string> PySplit(std::string_view text, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> parts;
  if (sep) {
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      const size_t found = text.find(*sep, start);
      if (found == std::string_view::npos) break;
      parts.emplace_back(text.substr(start, found - start));
      start = found + sep->size();
    }
    parts.emplace_back(text.substr(start));
    return parts;
  }
  const std::u32string cps = DecodeUtf8(text);
  size_t i = 0;
  while (true) {
    while (i < cps.size() && IsPythonSpace(cps[i])) ++i;
    if (i == cps.size()) break;
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) {
      parts.push_back(EncodeUtf8(std::u32string_view(cps).substr(i)));  // the rest, trailing space kept
      break;
    }
    const size_t start = i;
    while (i < cps.size() && !IsPythonSpace(cps[i])) ++i;
    parts.push_back(EncodeUtf8(std::u32string_view(cps).substr(start, i - start)));
  }
  return parts;
}

std::vector<std::string> PyRSplit(std::string_view text, const std::optional<std::string>& sep, int64_t maxsplit) {
  if (maxsplit < 0) return PySplit(text, sep, maxsplit);
  std::vector<std::string> parts;
  if (sep) {
    size_t end = text.size();
    while (static_cast<int64_t>(parts.size()) < maxsplit) {
      if (end < sep->size()) break;
      const size_t found = text.rfind(*sep, end - sep->size());
      if (found == std::string_view::npos) break;
      parts.emplace_back(text.substr(found + sep->size(), end - found - sep->size()));
      end = found;
    }
    parts.emplace_back(text.substr(0, end));
  } else {
    const std::u32string cps = DecodeUtf8(text);
    size_t i = cps.size();
    while (true) {
      while (i > 0 && IsPythonSpace(cps[i - 1])) --i;
      if (i == 0) break;
      if (static_cast<int64_t>(parts.size()) == maxsplit) {
        parts.push_back(EncodeUtf8(std::u32string_view(cps).substr(0, i)));  // the rest, leading space kept
        break;
      }
      const size_t end = i;
      while (i > 0 && !IsPythonSpace(cps[i - 1])) --i;
      parts.push_back(EncodeUtf8(std::u32string_view(cps).substr(i, end - i)));
    }
  }
  return std::vector<std::string>(parts.rbegin(), parts.rend());
}

std::vector<std::string> PySplitLines(std::string_view text, bool keepends) {
  std::vector<std::string> lines;
  const std::u32string cps = DecodeUtf8(text);
  size_t start = 0;
  size_t i = 0;
  while (i < cps.size()) {
    if (!IsLineBreak(cps[i])) {
      ++i;
      continue;
    }
    size_t break_end = i + 1;
    if (cps[i] == '\r' && break_end < cps.size() && cps[break_end] == '\n') ++break_end;
    const size_t line_end = keepends ? break_end : i;
    lines.push_back(EncodeUtf8(std::u32string_view(cps).substr(start, line_end - start)));
    start = i = break_end;
  }
  if (start < cps.size()) lines.push_back(EncodeUtf8(std::u32string_view(cps).substr(start)));
  return lines;
}

std::string PyReplace(std::string_view text, std::string_view old_text, std::string_view new_text, int64_t count) {
  std::string out;
  int64_t done = 0;
  if (old_text.empty()) {
    size_t pos = 0;
    while (pos < text.size()) {
      if (count < 0 || done < count) {
        out.append(new_text);
        ++done;
      }
      const size_t before = pos;
      NextCodePoint(text, &pos);
      out.append(text.substr(before, pos - before));
    }
    if (count < 0 || done < count) out.append(new_text);
    return out;
  }
  size_t start = 0;
  while (count < 0 || done < count) {
    const size_t found = text.find(old_text, start);
    if (found == std::string_view::npos) break;
    out.append(text.substr(start, found - start));
    out.append(new_text);
    start = found + old_text.size();
    ++done;
  }
  out.append(text.substr(start));
  return out;
}

std::string PyUpper(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) AppendUpper(NextCodePoint(text, &pos), &out);
  return out;
}

std::string PyLower(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) AppendUtf8(ToLower(NextCodePoint(text, &pos)), &out);
  return out;
}

std::string PyTitle(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool previous_is_cased = false;
  size_t pos = 0;
  while (pos < text.size()) {
    const char32_t c = NextCodePoint(text, &pos);
    if (previous_is_cased) {
      AppendUtf8(ToLower(c), &out);
    } else {
      AppendUpper(c, &out, /*title=*/true);
    }
    previous_is_cased = IsCased(c);
  }
  return out;
}

std::string PyCapitalize(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  if (pos < text.size()) AppendUpper(NextCodePoint(text, &pos), &out, /*title=*/true);
  while (pos < text.size()) AppendUtf8(ToLower(NextCodePoint(text, &pos)), &out);
  return out;
}

bool IsUpperCodePoint(char32_t c) { return ToLower(c) != c; }
bool IsLowerCodePoint(char32_t c) { return ToUpper(c) != c || c == 0xDF; }

bool IsAlphaCodePoint(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  locale_t locale = Utf8Locale();
  return locale ? iswalpha_l(static_cast<wint_t>(c), locale) != 0 : false;
}

bool IsDigitCodePoint(char32_t c) { return c >= '0' && c <= '9'; }

std::string PyRepr(std::string_view text) {
  const bool has_single = text.find('\'') != std::string_view::npos;
  const bool has_double = text.find('"') != std::string_view::npos;
  const char quote = (has_single && !has_double) ? '"' : '\'';
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back(quote);
  size_t pos = 0;
  while (pos < text.size()) {
    const char32_t c = NextCodePoint(text, &pos);
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c == '\t') {
      out.append("\\t");
    } else if (c == '\n') {
      out.append("\\n");
    } else if (c == '\r') {
      out.append("\\r");
    } else if (IsPrintable(c)) {
      AppendUtf8(c, &out);
    } else {
      char buf[16];
      if (c < 0x100) {
        std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned>(c));
      } else if (c < 0x10000) {
        std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(c));
      } else {
        std::snprintf(buf, sizeof(buf), "\\U%08x", static_cast<unsigned>(c));
      }
      out.append(buf);
    }
  }
  out.push_back(quote);
  return out;
}

std::string PyFloatRepr(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  // The shortest round-trip digits, from scientific notation: "d.ddde±XX".
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  std::string sci(buf, result.ptr);
  std::string out;
  size_t i = 0;
  if (sci[0] == '-') {
    out.push_back('-');
    i = 1;
  }
  const size_t e = sci.find('e');
  std::string digits;
  for (size_t k = i; k < e; ++k) {
    if (sci[k] != '.') digits.push_back(sci[k]);
  }
  const int exponent = std::atoi(sci.c_str() + e + 1);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int decpt = exponent + 1;  // value = 0.<digits> * 10^decpt
  if (decpt > -4 && decpt <= 16) {
    if (decpt <= 0) {
      out.append("0.");
      out.append(static_cast<size_t>(-decpt), '0');
      out.append(digits);
    } else if (static_cast<size_t>(decpt) >= digits.size()) {
      out.append(digits);
      out.append(static_cast<size_t>(decpt) - digits.size(), '0');
      out.append(".0");
    } else {
      out.append(digits.substr(0, static_cast<size_t>(decpt)));
      out.push_back('.');
      out.append(digits.substr(static_cast<size_t>(decpt)));
    }
    return out;
  }
  out.push_back(digits[0]);
  if (digits.size() > 1) {
    out.push_back('.');
    out.append(digits.substr(1));
  }
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  out.append(exp_buf);
  return out;
}

std::string SliceCodePoints(std::string_view text, int64_t start, int64_t stop, int64_t step) {
  std::string out;
  if (step == 1 && IsAscii(text)) {
    if (start < stop) out.assign(text.substr(static_cast<size_t>(start), static_cast<size_t>(stop - start)));
    return out;
  }
  const std::u32string cps = DecodeUtf8(text);
  if (step > 0) {
    for (int64_t i = start; i < stop; i += step) AppendUtf8(cps[static_cast<size_t>(i)], &out);
  } else {
    for (int64_t i = start; i > stop; i += step) AppendUtf8(cps[static_cast<size_t>(i)], &out);
  }
  return out;
}

}  // namespace tandem::jinja
