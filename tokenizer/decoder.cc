#include "tokenizer/decoder.h"

#include <optional>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "tokenizer/unicode.h"

namespace tandem::tokenizer_internal {

// One streaming step of the decoder chain: consumes tokens, emits tokens to the next step.
class DecodeStage {
 public:
  using EmitFn = absl::FunctionRef<void(std::string)>;
  virtual ~DecodeStage() = default;
  virtual void Push(std::string token, EmitFn emit) = 0;
  // Emits whatever is held back; called once, after the previous stage finished.
  virtual void Finish(EmitFn emit) {}
};

struct Decoder::StageSpec {
  enum class Kind { kJoinWithSpace, kByteLevel, kReplace, kByteFallback, kFuse, kStrip, kMetaspace };
  Kind kind;
  bool fused = false;   // runs on the fused string rather than per token
  std::string pattern;  // kReplace: the literal; kStrip: the character; kMetaspace: replacement
  std::string content;  // kReplace
  int64_t start = 0;    // kStrip
  int64_t stop = 0;     // kStrip
  bool strip_first = false;  // kMetaspace: prepend_scheme != never
};

namespace {

using EmitFn = DecodeStage::EmitFn;

// Splits valid UTF-8 into its characters.
std::vector<std::string_view> Characters(std::string_view text) {
  std::vector<std::string_view> characters;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t length = std::min(Utf8SequenceLength(static_cast<uint8_t>(text[pos])),
                                   text.size() - pos);
    characters.push_back(text.substr(pos, length));
    pos += length;
  }
  return characters;
}

class JoinWithSpaceStage : public DecodeStage {
 public:
  void Push(std::string token, EmitFn emit) override {
    if (!first_) token = " " + token;
    first_ = false;
    emit(std::move(token));
  }

 private:
  bool first_ = true;
};

class ByteLevelStage : public DecodeStage {
 public:
  void Push(std::string token, EmitFn emit) override {
    std::string bytes;
    size_t pos = 0;
    bool mapped = true;
    while (pos < token.size() && mapped) {
      const auto byte = UnicodeToByte(NextCodePoint(token, &pos));
      if (byte.has_value()) {
        bytes.push_back(static_cast<char>(*byte));
      } else {
        mapped = false;
      }
    }
    // A token with a character outside the table (e.g. an added token) passes through as is.
    std::string text;
    utf8_.Append(mapped ? bytes : token, &text);
    if (!text.empty()) emit(std::move(text));
  }
  void Finish(EmitFn emit) override {
    std::string text;
    utf8_.Finish(&text);
    if (!text.empty()) emit(std::move(text));
  }

 private:
  Utf8LossyStream utf8_;
};

class ReplaceStage : public DecodeStage {
 public:
  ReplaceStage(std::string pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void Push(std::string token, EmitFn emit) override {
    emit(absl::StrReplaceAll(token, {{pattern_, content_}}));
  }

 private:
  std::string pattern_;
  std::string content_;
};

class ByteFallbackStage : public DecodeStage {
 public:
  void Push(std::string token, EmitFn emit) override {
    if (auto byte = ParseByteToken(token)) {
      run_.push_back(static_cast<char>(*byte));
      return;
    }
    FlushRun(emit);
    emit(std::move(token));
  }
  void Finish(EmitFn emit) override { FlushRun(emit); }

 private:
  static std::optional<uint8_t> ParseByteToken(std::string_view token) {
    if (token.size() != 6 || !token.starts_with("<0x") || token.back() != '>') return std::nullopt;
    int value = 0;
    for (char c : token.substr(3, 2)) {
      value *= 16;
      if (c >= '0' && c <= '9') {
        value += c - '0';
      } else if (c >= 'A' && c <= 'F') {
        value += c - 'A' + 10;
      } else if (c >= 'a' && c <= 'f') {
        value += c - 'a' + 10;
      } else {
        return std::nullopt;
      }
    }
    return static_cast<uint8_t>(value);
  }
  void FlushRun(EmitFn emit) {
    if (run_.empty()) return;
    if (!FindInvalidUtf8(run_).has_value()) {
      emit(std::move(run_));
    } else {
      for (size_t i = 0; i < run_.size(); ++i) emit(std::string(kReplacementCharacter));
    }
    run_.clear();
  }

  std::string run_;  // bytes of consecutive <0xNN> tokens
};

class StripStage : public DecodeStage {
 public:
  StripStage(std::string character, int64_t start, int64_t stop, bool fused)
      : character_(std::move(character)), start_(start), stop_(stop), fused_(fused) {}

  void Push(std::string token, EmitFn emit) override {
    if (!fused_) {
      emit(StripToken(token));
      return;
    }
    std::string out;
    for (std::string_view character : Characters(token)) {
      if (start_left_ > 0) {
        if (character == character_) {
          --start_left_;
          continue;
        }
        start_left_ = 0;
      }
      if (stop_ > 0 && character == character_) {
        // Hold the trailing run; only its last `stop_` characters may be stripped.
        ++held_;
        if (held_ > stop_) {
          out.append(character_);
          --held_;
        }
        continue;
      }
      for (; held_ > 0; --held_) out.append(character_);
      out.append(character);
    }
    if (!out.empty()) emit(std::move(out));
  }
  // Held characters are the trailing ones the reference strips: drop them.
  void Finish(EmitFn emit) override { held_ = 0; }

 private:
  std::string StripToken(std::string_view token) const {
    std::vector<std::string_view> characters = Characters(token);
    size_t begin = 0;
    while (begin < characters.size() && begin < static_cast<size_t>(start_) &&
           characters[begin] == character_) {
      ++begin;
    }
    size_t end = characters.size();
    while (end > begin && characters.size() - end < static_cast<size_t>(stop_) &&
           characters[end - 1] == character_) {
      --end;
    }
    std::string out;
    for (size_t i = begin; i < end; ++i) out.append(characters[i]);
    return out;
  }

  std::string character_;
  int64_t start_;
  int64_t stop_;
  bool fused_;
  int64_t start_left_ = start_;
  int64_t held_ = 0;
};

class MetaspaceStage : public DecodeStage {
 public:
  MetaspaceStage(std::string replacement, bool strip_first)
      : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  void Push(std::string token, EmitFn emit) override {
    // The reference drops every replacement character of the first token, not only the leading
    // one; kept for exact agreement.
    const bool drop = first_ && strip_first_;
    first_ = false;
    emit(absl::StrReplaceAll(token, {{replacement_, drop ? "" : " "}}));
  }

 private:
  std::string replacement_;
  bool strip_first_;
  bool first_ = true;
};

class FuseStage : public DecodeStage {
 public:
  void Push(std::string token, EmitFn emit) override { emit(std::move(token)); }
};

}  // namespace

DecodeStream::DecodeStream(std::vector<std::unique_ptr<DecodeStage>> stages)
    : stages_(std::move(stages)) {}
DecodeStream::~DecodeStream() = default;

void DecodeStream::Emit(size_t stage, std::string token, std::string* out) {
  if (stage == stages_.size()) {
    out->append(token);
    return;
  }
  stages_[stage]->Push(std::move(token),
                       [this, stage, out](std::string next) { Emit(stage + 1, std::move(next), out); });
}

void DecodeStream::Push(std::string_view token, std::string* out) {
  Emit(0, std::string(token), out);
}

void DecodeStream::Finish(std::string* out) {
  for (size_t i = 0; i < stages_.size(); ++i) {
    stages_[i]->Finish([this, i, out](std::string next) { Emit(i + 1, std::move(next), out); });
  }
}

Decoder::Decoder() = default;
Decoder::~Decoder() = default;

absl::StatusOr<std::unique_ptr<Decoder>> Decoder::FromJson(const Json* decoder,
                                                           const std::string& path) {
  auto result = std::unique_ptr<Decoder>(new Decoder());
  if (decoder == nullptr) {
    auto spec = std::make_unique<StageSpec>();
    spec->kind = StageSpec::Kind::kJoinWithSpace;
    result->specs_.push_back(std::move(spec));
    return result;
  }
  bool fused = false;
  TANDEM_RETURN_IF_ERROR(result->AddStages(*decoder, path, &fused));
  return result;
}

absl::Status Decoder::AddStages(const Json& decoder, const std::string& path, bool* fused) {
  if (!decoder.is_object()) return absl::InvalidArgumentError(absl::StrCat(path, " must be an object"));
  TANDEM_ASSIGN_OR_RETURN(const std::string type, GetString(decoder, "type", path));
  if (type == "Sequence") {
    const Json* children = FindField(decoder, "decoders");
    if (children == nullptr || !children->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".decoders must be an array"));
    }
    for (size_t i = 0; i < children->size(); ++i) {
      TANDEM_RETURN_IF_ERROR(
          AddStages((*children)[i], absl::StrCat(path, ".decoders[", i, "]"), fused));
    }
    return absl::OkStatus();
  }
  auto spec = std::make_unique<StageSpec>();
  spec->fused = *fused;
  auto not_after_fuse = [&]() {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": decoder '", type, "' after Fuse/ByteLevel is not supported"));
  };
  if (type == "ByteLevel") {
    spec->kind = StageSpec::Kind::kByteLevel;
    *fused = true;
  } else if (type == "Fuse") {
    spec->kind = StageSpec::Kind::kFuse;
    *fused = true;
  } else if (type == "ByteFallback") {
    spec->kind = StageSpec::Kind::kByteFallback;
    if (spec->fused) return not_after_fuse();
  } else if (type == "Replace") {
    spec->kind = StageSpec::Kind::kReplace;
    TANDEM_ASSIGN_OR_RETURN(const PatternSpec pattern, GetPattern(decoder, "pattern", path));
    if (pattern.is_regex || pattern.text.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".pattern: only a non-empty String pattern is supported"));
    }
    spec->pattern = pattern.text;
    TANDEM_ASSIGN_OR_RETURN(spec->content, GetString(decoder, "content", path));
    // On the fused string a pattern could span two tokens; one character cannot.
    if (spec->fused && Characters(spec->pattern).size() != 1) return not_after_fuse();
  } else if (type == "Strip") {
    spec->kind = StageSpec::Kind::kStrip;
    TANDEM_ASSIGN_OR_RETURN(spec->pattern, GetString(decoder, "content", path, " "));
    if (Characters(spec->pattern).size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".content must be one character"));
    }
    TANDEM_ASSIGN_OR_RETURN(spec->start, GetInt(decoder, "start", path, 0));
    TANDEM_ASSIGN_OR_RETURN(spec->stop, GetInt(decoder, "stop", path, 0));
    if (spec->start < 0 || spec->stop < 0) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": start and stop must be >= 0"));
    }
  } else if (type == "Metaspace") {
    spec->kind = StageSpec::Kind::kMetaspace;
    if (spec->fused) return not_after_fuse();
    TANDEM_ASSIGN_OR_RETURN(spec->pattern, GetString(decoder, "replacement", path, "\xE2\x96\x81"));
    TANDEM_ASSIGN_OR_RETURN(auto scheme, GetOptionalString(decoder, "prepend_scheme", path));
    if (scheme.has_value()) {
      spec->strip_first = *scheme != "never";
    } else {
      TANDEM_ASSIGN_OR_RETURN(spec->strip_first, GetBool(decoder, "add_prefix_space", path, true));
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ".type '", type,
        "' is not supported (supported: Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, "
        "Metaspace)"));
  }
  specs_.push_back(std::move(spec));
  return absl::OkStatus();
}

std::unique_ptr<DecodeStream> Decoder::NewStream() const {
  std::vector<std::unique_ptr<DecodeStage>> stages;
  for (const auto& spec : specs_) {
    switch (spec->kind) {
      case StageSpec::Kind::kJoinWithSpace:
        stages.push_back(std::make_unique<JoinWithSpaceStage>());
        break;
      case StageSpec::Kind::kByteLevel:
        stages.push_back(std::make_unique<ByteLevelStage>());
        break;
      case StageSpec::Kind::kReplace:
        stages.push_back(std::make_unique<ReplaceStage>(spec->pattern, spec->content));
        break;
      case StageSpec::Kind::kByteFallback:
        stages.push_back(std::make_unique<ByteFallbackStage>());
        break;
      case StageSpec::Kind::kFuse:
        stages.push_back(std::make_unique<FuseStage>());
        break;
      case StageSpec::Kind::kStrip:
        stages.push_back(
            std::make_unique<StripStage>(spec->pattern, spec->start, spec->stop, spec->fused));
        break;
      case StageSpec::Kind::kMetaspace:
        stages.push_back(std::make_unique<MetaspaceStage>(spec->pattern, spec->strip_first));
        break;
    }
  }
  return std::make_unique<DecodeStream>(std::move(stages));
}

}  // namespace tandem::tokenizer_internal
