#include "chat/jinja_lexer.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "chat/jinja_strings.h"

namespace tandem::jinja {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameStart(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80; }
bool IsNameChar(unsigned char c) { return IsNameStart(c) || IsDigit(static_cast<char>(c)); }

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Source with \r\n and \r turned into \n and, unless kept, one trailing newline dropped: what
// Jinja's lexer does before anything else.
std::string NormalizeSource(std::string_view source, bool keep_trailing_newline) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out.push_back(source[i]);
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// Python's "unicode-escape" decoding of a string literal's body (Jinja decodes literals that way).
absl::StatusOr<std::string> Unescape(std::string_view body) {
  std::string out;
  out.reserve(body.size());
  char32_t pending_high_surrogate = 0;  // 0: none pending
  auto flush_surrogate = [&] {
    if (pending_high_surrogate != 0) AppendUtf8(0xFFFD, &out);
    pending_high_surrogate = 0;
  };
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '\\' || i + 1 == body.size()) {
      flush_surrogate();
      out.push_back(body[i]);
      continue;
    }
    const char c = body[++i];
    std::optional<char32_t> code_point;
    switch (c) {
      case '\n':
        continue;
      case '\\':
      case '\'':
      case '"':
        flush_surrogate();
        out.push_back(c);
        continue;
      case 'a':
        code_point = 7;
        break;
      case 'b':
        code_point = 8;
        break;
      case 'f':
        code_point = 12;
        break;
      case 'n':
        code_point = '\n';
        break;
      case 'r':
        code_point = '\r';
        break;
      case 't':
        code_point = '\t';
        break;
      case 'v':
        code_point = 11;
        break;
      case 'x':
      case 'u':
      case 'U': {
        const size_t digits = c == 'x' ? 2 : (c == 'u' ? 4 : 8);
        char32_t value = 0;
        for (size_t k = 0; k < digits; ++k) {
          const int d = i + 1 + k < body.size() ? HexDigit(body[i + 1 + k]) : -1;
          if (d < 0) {
            return absl::InvalidArgumentError(
                absl::StrCat("truncated \\", std::string(1, c), std::string(digits, 'X'), " escape"));
          }
          value = value * 16 + static_cast<char32_t>(d);
        }
        i += digits;
        if (value > 0x10FFFF) return absl::InvalidArgumentError("illegal Unicode character");
        code_point = value;
        break;
      }
      case 'N':
        return absl::InvalidArgumentError("\\N{...} escapes are not supported");
      default:
        if (c >= '0' && c <= '7') {
          char32_t value = static_cast<char32_t>(c - '0');
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k) {
            value = value * 8 + static_cast<char32_t>(body[++i] - '0');
          }
          code_point = value;
          break;
        }
        flush_surrogate();
        out.push_back('\\');
        if (static_cast<unsigned char>(c) >= 0x80) {
          // Jinja decodes literals as body.encode("ascii", "backslashreplace").decode("unicode-escape"),
          // so a backslash before a non-ASCII character keeps that character's escape as text.
          size_t pos = i;
          const char32_t cp = NextCodePoint(body, &pos);
          i = pos - 1;
          char buf[16];
          std::snprintf(buf, sizeof(buf), cp < 0x100 ? "x%02x" : (cp < 0x10000 ? "u%04x" : "U%08x"),
                        static_cast<unsigned>(cp));
          out.append(buf);
          continue;
        }
        out.push_back(c);
        continue;
    }
    const char32_t cp = *code_point;
    if (cp >= 0xDC00 && cp <= 0xDFFF && pending_high_surrogate != 0) {
      AppendUtf8(0x10000 + ((pending_high_surrogate - 0xD800) << 10) + (cp - 0xDC00), &out);
      pending_high_surrogate = 0;
      continue;
    }
    flush_surrogate();
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      pending_high_surrogate = cp;
    } else {
      AppendUtf8(cp, &out);
    }
  }
  flush_surrogate();
  return out;
}

class Lexer {
 public:
  Lexer(std::string source, const SyntaxOptions& options) : src_(std::move(source)), options_(options) {}

  absl::StatusOr<std::vector<Token>> Run() {
    while (pos_ < src_.size()) {
      if (absl::Status s = LexRoot(); !s.ok()) return s;
    }
    tokens_.push_back(Token{TokenKind::kEof, line_, ""});
    return std::move(tokens_);
  }

 private:
  absl::Status Error(const std::string& message) const {
    return absl::InvalidArgumentError(absl::StrCat("line ", line_, ": ", message));
  }

  // Moves to `to`, counting the newlines passed.
  void AdvanceTo(size_t to) {
    for (size_t i = pos_; i < to; ++i) {
      if (src_[i] == '\n') ++line_;
    }
    pos_ = to;
  }

  bool StartsWith(size_t at, std::string_view prefix) const { return src_.compare(at, prefix.size(), prefix) == 0; }

  // Length of the (Python) whitespace run at `at`.
  size_t WhitespaceLength(size_t at) const {
    size_t p = at;
    while (p < src_.size()) {
      size_t next = p;
      if (!IsPythonSpace(NextCodePoint(src_, &next))) break;
      p = next;
    }
    return p - at;
  }

  void EmitData(std::string text, int line) {
    if (!text.empty()) tokens_.push_back(Token{TokenKind::kData, line, std::move(text)});
  }

  // Applies `{%-` stripping or lstrip_blocks to the text before a tag (Jinja's OptionalLStrip).
  std::string StripBefore(std::string_view text, char sign, bool lstrip_allowed) const {
    if (sign == '-') return PyStrip(text, StripSide::kRight, std::nullopt);
    if (sign == '+' || !lstrip_allowed || !options_.lstrip_blocks) return std::string(text);
    const size_t newline = text.rfind('\n');
    const size_t line_start = newline == std::string_view::npos ? 0 : newline + 1;
    if (line_start == 0 && !line_starting_) return std::string(text);
    const std::string_view tail = text.substr(line_start);
    if (tail.empty()) return std::string(text);
    size_t p = 0;
    while (p < tail.size()) {
      if (!IsPythonSpace(NextCodePoint(tail, &p))) return std::string(text);
    }
    return std::string(text.substr(0, line_start));
  }

  // Length of a block end at `at` ("%}" plus the newline trim_blocks removes, "-%}" plus all
  // following whitespace, or "+%}"), or 0. Comments end the same way with '#'.
  size_t TagEndLength(size_t at, char closer_first, bool trims) const {
    const std::string plain = std::string(1, closer_first) + "}";
    if (StartsWith(at, "+" + plain)) return 3;
    if (StartsWith(at, "-" + plain)) return 3 + WhitespaceLength(at + 3);
    if (StartsWith(at, plain)) {
      return 2 + ((trims && options_.trim_blocks && at + 2 < src_.size() && src_[at + 2] == '\n') ? 1 : 0);
    }
    return 0;
  }

  // Matches `{%[-+]?\s*raw\s*(-%}\s*|%})` at `at` (the raw opener ignores trim_blocks, as in Jinja).
  size_t RawBeginLength(size_t at) const { return RawTagLength(at, "raw", /*trims=*/false); }
  size_t RawTagLength(size_t at, std::string_view word, bool trims) const {
    if (!StartsWith(at, "{%")) return 0;
    size_t p = at + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    p += WhitespaceLength(p);
    if (!StartsWith(p, word)) return 0;
    p += word.size();
    if (p < src_.size() && IsNameChar(static_cast<unsigned char>(src_[p]))) return 0;
    p += WhitespaceLength(p);
    if (!trims && StartsWith(p, "+%}")) return 0;
    const size_t end = TagEndLength(p, '%', trims);
    return end == 0 ? 0 : p + end - at;
  }

  absl::Status LexRoot() {
    size_t tag = pos_;
    while (true) {
      tag = src_.find('{', tag);
      if (tag == std::string::npos || tag + 1 >= src_.size()) {
        const int line = line_;
        EmitData(src_.substr(pos_), line);
        AdvanceTo(src_.size());
        return absl::OkStatus();
      }
      const char kind = src_[tag + 1];
      if (kind == '{' || kind == '%' || kind == '#') break;
      ++tag;
    }
    const char kind = src_[tag + 1];
    const char sign = (tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+')) ? src_[tag + 2] : 0;
    const int data_line = line_;
    EmitData(StripBefore(std::string_view(src_).substr(pos_, tag - pos_), sign, kind != '{'), data_line);
    AdvanceTo(tag);
    if (kind == '%') {
      if (const size_t raw = RawBeginLength(tag); raw > 0) return LexRaw(tag + raw);
    }
    AdvanceTo(tag + 2 + (sign ? 1 : 0));
    if (kind == '#') return LexComment();
    tokens_.push_back(Token{kind == '{' ? TokenKind::kVariableBegin : TokenKind::kBlockBegin, line_, ""});
    return LexTag(kind == '{');
  }

  absl::Status LexRaw(size_t body_start) {
    line_starting_ = src_[body_start - 1] == '\n';
    AdvanceTo(body_start);
    if (pos_ >= src_.size()) return absl::OkStatus();  // as for comments: Jinja accepts it
    for (size_t at = src_.find("{%", pos_); at != std::string::npos; at = src_.find("{%", at + 1)) {
      const size_t length = RawTagLength(at, "endraw", /*trims=*/true);
      if (length == 0) continue;
      const char sign = (src_[at + 2] == '-' || src_[at + 2] == '+') ? src_[at + 2] : 0;
      const int line = line_;
      EmitData(StripBefore(std::string_view(src_).substr(pos_, at - pos_), sign, true), line);
      AdvanceTo(at + length);
      line_starting_ = src_[pos_ - 1] == '\n';
      return absl::OkStatus();
    }
    return Error("Missing end of raw directive");
  }

  absl::Status LexComment() {
    // Jinja quirk kept for fidelity: a comment opener that ends the source is not an error.
    if (pos_ >= src_.size()) return absl::OkStatus();
    for (size_t at = pos_; at < src_.size(); ++at) {
      const size_t length = TagEndLength(at, '#', /*trims=*/true);
      if (length == 0) continue;
      AdvanceTo(at + length);
      line_starting_ = src_[pos_ - 1] == '\n';
      return absl::OkStatus();
    }
    return Error("Missing end of comment tag");
  }

  absl::Status LexTag(bool variable) {
    std::vector<char> balance;
    while (true) {
      if (balance.empty()) {
        size_t end = 0;
        if (variable) {
          if (StartsWith(pos_, "-}}")) {
            end = 3 + WhitespaceLength(pos_ + 3);
          } else if (StartsWith(pos_, "}}")) {
            end = 2;
          }
        } else {
          end = TagEndLength(pos_, '%', true);
        }
        if (end > 0) {
          tokens_.push_back(Token{variable ? TokenKind::kVariableEnd : TokenKind::kBlockEnd, line_, ""});
          AdvanceTo(pos_ + end);
          line_starting_ = src_[pos_ - 1] == '\n';
          return absl::OkStatus();
        }
      }
      if (const size_t ws = WhitespaceLength(pos_); ws > 0) {
        AdvanceTo(pos_ + ws);
        continue;
      }
      if (pos_ >= src_.size()) {
        return Error(variable ? "unexpected end of template, expected 'end of print statement'"
                              : "unexpected end of template, expected 'end of statement block'");
      }
      if (absl::Status s = LexOne(&balance); !s.ok()) return s;
    }
  }

  // Digits with single '_' separators at `at`; returns the length, 0 when none.
  size_t DigitRun(size_t at) const {
    size_t p = at;
    if (p >= src_.size() || !IsDigit(src_[p])) return 0;
    while (p < src_.size()) {
      if (IsDigit(src_[p])) {
        ++p;
      } else if (src_[p] == '_' && p + 1 < src_.size() && IsDigit(src_[p + 1])) {
        ++p;
      } else {
        break;
      }
    }
    return p - at;
  }

  static std::string WithoutUnderscores(std::string_view text) {
    std::string out;
    for (char c : text) {
      if (c != '_') out.push_back(c);
    }
    return out;
  }

  absl::Status LexNumber() {
    const size_t start = pos_;
    const size_t int_length = DigitRun(start);
    size_t p = start + int_length;
    bool is_float = false;
    if (start == 0 || src_[start - 1] != '.') {
      if (p + 1 < src_.size() && src_[p] == '.' && IsDigit(src_[p + 1])) {
        p += 1 + DigitRun(p + 1);
        is_float = true;
      }
      if (p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
        size_t q = p + 1;
        if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) ++q;
        if (const size_t exponent = DigitRun(q); exponent > 0) {
          p = q + exponent;
          is_float = true;
        }
      }
    }
    if (is_float) {
      const std::string text = WithoutUnderscores(std::string_view(src_).substr(start, p - start));
      Token token{TokenKind::kFloat, line_, text};
      token.number = std::strtod(text.c_str(), nullptr);
      tokens_.push_back(std::move(token));
      AdvanceTo(p);
      return absl::OkStatus();
    }
    return LexInteger();
  }

  absl::Status LexInteger() {
    const size_t start = pos_;
    int base = 10;
    size_t digits_start = start;
    size_t p = start;
    if (src_[start] == '0' && start + 1 < src_.size() &&
        (src_[start + 1] == 'b' || src_[start + 1] == 'B' || src_[start + 1] == 'o' || src_[start + 1] == 'O' ||
         src_[start + 1] == 'x' || src_[start + 1] == 'X')) {
      const char prefix = static_cast<char>(src_[start + 1] | 0x20);
      base = prefix == 'b' ? 2 : (prefix == 'o' ? 8 : 16);
      digits_start = p = start + 2;
      while (p < src_.size()) {
        const char c = src_[p];
        const int d = HexDigit(c);
        if (d >= 0 && d < base) {
          ++p;
        } else if (c == '_' && p + 1 < src_.size() && HexDigit(src_[p + 1]) >= 0 && HexDigit(src_[p + 1]) < base) {
          ++p;
        } else {
          break;
        }
      }
      if (p == digits_start) return Error(absl::StrCat("invalid integer literal '", src_.substr(start, 2), "'"));
    } else if (src_[start] == '0') {
      p = start + 1;
      while (p < src_.size() && (src_[p] == '0' || (src_[p] == '_' && p + 1 < src_.size() && src_[p + 1] == '0'))) ++p;
    } else {
      p = start + DigitRun(start);
    }
    const std::string digits = WithoutUnderscores(std::string_view(src_).substr(digits_start, p - digits_start));
    errno = 0;
    char* end = nullptr;
    const unsigned long long value = std::strtoull(digits.c_str(), &end, base);
    if (errno == ERANGE || value > static_cast<unsigned long long>(INT64_MAX)) {
      return Error(absl::StrCat("integer literal ", src_.substr(start, p - start), " is too large"));
    }
    Token token{TokenKind::kInteger, line_, src_.substr(start, p - start)};
    token.integer = static_cast<int64_t>(value);
    tokens_.push_back(std::move(token));
    AdvanceTo(p);
    return absl::OkStatus();
  }

  absl::Status LexString() {
    const char quote = src_[pos_];
    size_t p = pos_ + 1;
    while (p < src_.size() && src_[p] != quote) p += src_[p] == '\\' ? 2 : 1;
    if (p >= src_.size()) return Error(absl::StrCat("unexpected char ", PyRepr(std::string(1, quote)), " at ", pos_));
    absl::StatusOr<std::string> value = Unescape(std::string_view(src_).substr(pos_ + 1, p - pos_ - 1));
    if (!value.ok()) return Error(std::string(value.status().message()));
    tokens_.push_back(Token{TokenKind::kString, line_, *std::move(value)});
    AdvanceTo(p + 1);
    return absl::OkStatus();
  }

  absl::Status LexOperator(std::vector<char>* balance) {
    static constexpr std::string_view kTwoChar[] = {"//", "**", "==", "!=", "<=", ">="};
    for (std::string_view op : kTwoChar) {
      if (StartsWith(pos_, op)) {
        tokens_.push_back(Token{TokenKind::kOperator, line_, std::string(op)});
        AdvanceTo(pos_ + 2);
        return absl::OkStatus();
      }
    }
    const char c = src_[pos_];
    if (std::string_view("+-/*%~[](){}<>=.:|,;").find(c) == std::string_view::npos) {
      size_t next = pos_;
      NextCodePoint(src_, &next);
      return Error(absl::StrCat("unexpected char ", PyRepr(src_.substr(pos_, next - pos_)), " at ", pos_));
    }
    if (c == '(' || c == '[' || c == '{') {
      balance->push_back(c == '(' ? ')' : (c == '[' ? ']' : '}'));
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance->empty()) return Error(absl::StrCat("unexpected '", std::string(1, c), "'"));
      if (balance->back() != c) {
        return Error(
            absl::StrCat("unexpected '", std::string(1, c), "', expected '", std::string(1, balance->back()), "'"));
      }
      balance->pop_back();
    }
    tokens_.push_back(Token{TokenKind::kOperator, line_, std::string(1, c)});
    AdvanceTo(pos_ + 1);
    return absl::OkStatus();
  }

  absl::Status LexOne(std::vector<char>* balance) {
    const unsigned char c = static_cast<unsigned char>(src_[pos_]);
    if (IsDigit(static_cast<char>(c))) return LexNumber();
    if (IsNameStart(c)) {
      size_t p = pos_;
      while (p < src_.size() && IsNameChar(static_cast<unsigned char>(src_[p]))) {
        size_t next = p;
        if (IsPythonSpace(NextCodePoint(src_, &next))) break;
        p = next;
      }
      tokens_.push_back(Token{TokenKind::kName, line_, src_.substr(pos_, p - pos_)});
      AdvanceTo(p);
      return absl::OkStatus();
    }
    if (c == '\'' || c == '"') return LexString();
    return LexOperator(balance);
  }

  const std::string src_;
  const SyntaxOptions options_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;  // the previous match ended with a newline (or nothing came before)
  std::vector<Token> tokens_;
};

}  // namespace

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view source, const SyntaxOptions& options) {
  if (std::optional<size_t> bad = FindInvalidUtf8(source)) {
    return absl::InvalidArgumentError(absl::StrCat("template is not valid UTF-8 at byte ", *bad));
  }
  Lexer lexer(NormalizeSource(source, options.keep_trailing_newline), options);
  return lexer.Run();
}

}  // namespace tandem::jinja
