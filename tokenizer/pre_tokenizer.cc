#include "tokenizer/pre_tokenizer.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/status_macros.h"
#include "tokenizer/unicode.h"

namespace tandem::tokenizer_internal {

struct PreTokenizer::Step {
  enum class Kind { kByteLevel, kSplit, kMetaspace };
  enum class Prepend { kAlways, kFirst, kNever };
  Kind kind;
  // kByteLevel
  bool add_prefix_space = false;
  // kByteLevel (GPT-2 regex, may be null) and kSplit with a Regex pattern.
  std::unique_ptr<Regex> regex;
  // kSplit
  std::string literal;  // String pattern
  Behavior behavior = Behavior::kIsolated;
  bool invert = false;
  // kMetaspace
  std::string replacement;
  Prepend prepend = Prepend::kAlways;
  bool split = true;
};

namespace {

struct Piece {
  ByteRange range;
  bool is_match;
};

// Every occurrence of `literal` in `text`, left to right, non-overlapping.
std::vector<ByteRange> FindLiteral(std::string_view text, std::string_view literal) {
  std::vector<ByteRange> matches;
  for (size_t pos = text.find(literal); pos != std::string_view::npos;
       pos = text.find(literal, pos + literal.size())) {
    matches.push_back({pos, pos + literal.size()});
  }
  return matches;
}

// Pieces covering `size` bytes: the matches and the gaps between them.
std::vector<Piece> ToPieces(size_t size, const std::vector<ByteRange>& matches, bool invert) {
  std::vector<Piece> pieces;
  size_t previous = 0;
  for (const ByteRange& match : matches) {
    if (match.begin > previous) pieces.push_back({{previous, match.begin}, invert});
    pieces.push_back({match, !invert});
    previous = match.end;
  }
  if (previous < size) pieces.push_back({{previous, size}, invert});
  return pieces;
}

}  // namespace

PreTokenizer::PreTokenizer() = default;
PreTokenizer::~PreTokenizer() = default;

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::FromJson(const Json& pre_tokenizer,
                                                                     const std::string& path) {
  auto result = std::unique_ptr<PreTokenizer>(new PreTokenizer());
  TANDEM_RETURN_IF_ERROR(result->AddSteps(pre_tokenizer, path));
  return result;
}

absl::Status PreTokenizer::AddSteps(const Json& pre_tokenizer, const std::string& path) {
  if (!pre_tokenizer.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " must be an object"));
  }
  TANDEM_ASSIGN_OR_RETURN(const std::string type, GetString(pre_tokenizer, "type", path));
  auto step = std::make_unique<Step>();
  if (type == "Sequence") {
    const Json* children = FindField(pre_tokenizer, "pretokenizers");
    if (children == nullptr || !children->is_array()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".pretokenizers must be an array"));
    }
    for (size_t i = 0; i < children->size(); ++i) {
      TANDEM_RETURN_IF_ERROR(
          AddSteps((*children)[i], absl::StrCat(path, ".pretokenizers[", i, "]")));
    }
    return absl::OkStatus();
  } else if (type == "ByteLevel") {
    step->kind = Step::Kind::kByteLevel;
    TANDEM_ASSIGN_OR_RETURN(step->add_prefix_space,
                            GetBool(pre_tokenizer, "add_prefix_space", path, true));
    TANDEM_ASSIGN_OR_RETURN(const bool use_regex, GetBool(pre_tokenizer, "use_regex", path, true));
    if (use_regex) {
      TANDEM_ASSIGN_OR_RETURN(step->regex, Regex::Compile(kGpt2SplitPattern));
    }
  } else if (type == "Split") {
    step->kind = Step::Kind::kSplit;
    TANDEM_ASSIGN_OR_RETURN(const PatternSpec pattern, GetPattern(pre_tokenizer, "pattern", path));
    if (pattern.is_regex) {
      auto regex = Regex::Compile(pattern.text);
      if (!regex.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ".pattern: ", regex.status().message()));
      }
      step->regex = *std::move(regex);
    } else if (pattern.text.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".pattern is empty"));
    } else {
      step->literal = pattern.text;
    }
    TANDEM_ASSIGN_OR_RETURN(const std::string behavior,
                            GetString(pre_tokenizer, "behavior", path, "Isolated"));
    if (behavior == "Removed") {
      step->behavior = Behavior::kRemoved;
    } else if (behavior == "Isolated") {
      step->behavior = Behavior::kIsolated;
    } else if (behavior == "MergedWithPrevious") {
      step->behavior = Behavior::kMergedWithPrevious;
    } else if (behavior == "MergedWithNext") {
      step->behavior = Behavior::kMergedWithNext;
    } else if (behavior == "Contiguous") {
      step->behavior = Behavior::kContiguous;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".behavior '", behavior, "' is not supported"));
    }
    TANDEM_ASSIGN_OR_RETURN(step->invert, GetBool(pre_tokenizer, "invert", path, false));
  } else if (type == "Metaspace") {
    step->kind = Step::Kind::kMetaspace;
    TANDEM_ASSIGN_OR_RETURN(step->replacement,
                            GetString(pre_tokenizer, "replacement", path, "\xE2\x96\x81"));
    if (step->replacement.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ".replacement is empty"));
    }
    TANDEM_ASSIGN_OR_RETURN(auto scheme, GetOptionalString(pre_tokenizer, "prepend_scheme", path));
    if (!scheme.has_value()) {
      // Files written before prepend_scheme existed carry add_prefix_space instead.
      TANDEM_ASSIGN_OR_RETURN(const bool add_prefix,
                              GetBool(pre_tokenizer, "add_prefix_space", path, true));
      scheme = add_prefix ? "always" : "never";
    }
    if (*scheme == "always") {
      step->prepend = Step::Prepend::kAlways;
    } else if (*scheme == "first") {
      step->prepend = Step::Prepend::kFirst;
    } else if (*scheme == "never") {
      step->prepend = Step::Prepend::kNever;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".prepend_scheme '", *scheme, "' is not supported"));
    }
    TANDEM_ASSIGN_OR_RETURN(step->split, GetBool(pre_tokenizer, "split", path, true));
  } else if (type == "Digits") {
    step->kind = Step::Kind::kSplit;
    TANDEM_ASSIGN_OR_RETURN(const bool individual,
                            GetBool(pre_tokenizer, "individual_digits", path, false));
    TANDEM_ASSIGN_OR_RETURN(step->regex, Regex::Compile("\\p{N}"));
    step->behavior = individual ? Behavior::kIsolated : Behavior::kContiguous;
  } else if (type == "Whitespace") {
    // Keeps the matches of \w+|[^\w\s]+ and drops the rest.
    step->kind = Step::Kind::kSplit;
    TANDEM_ASSIGN_OR_RETURN(step->regex, Regex::Compile("\\w+|[^\\w\\s]+"));
    step->behavior = Behavior::kRemoved;
    step->invert = true;
  } else if (type == "WhitespaceSplit") {
    step->kind = Step::Kind::kSplit;
    TANDEM_ASSIGN_OR_RETURN(step->regex, Regex::Compile("\\s+"));
    step->behavior = Behavior::kRemoved;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ".type '", type,
        "' is not supported (supported: Sequence, ByteLevel, Split, Metaspace, Digits, "
        "Whitespace, WhitespaceSplit)"));
  }
  steps_.push_back(std::move(step));
  return absl::OkStatus();
}

absl::Status PreTokenizer::PreTokenize(std::vector<PreToken>* words) const {
  for (const auto& step : steps_) TANDEM_RETURN_IF_ERROR(ApplyStep(*step, words));
  return absl::OkStatus();
}

absl::Status PreTokenizer::ApplyStep(const Step& step, std::vector<PreToken>* words) const {
  std::vector<PreToken> output;
  output.reserve(words->size());
  // Splits `word` by `matches` according to `behavior`, appending non-empty pieces to `output`.
  auto split = [&output](const PreToken& word, const std::vector<ByteRange>& matches,
                         Behavior behavior, bool invert) {
    std::vector<Piece> pieces = ToPieces(word.text.size(), matches, invert);
    std::vector<ByteRange> kept;
    switch (behavior) {
      case Behavior::kRemoved:
        for (const Piece& piece : pieces) {
          if (!piece.is_match) kept.push_back(piece.range);
        }
        break;
      case Behavior::kIsolated:
        for (const Piece& piece : pieces) kept.push_back(piece.range);
        break;
      case Behavior::kContiguous: {
        bool previous_match = false;
        for (const Piece& piece : pieces) {
          if (piece.is_match && previous_match && !kept.empty()) {
            kept.back().end = piece.range.end;
          } else {
            kept.push_back(piece.range);
          }
          previous_match = piece.is_match;
        }
        break;
      }
      case Behavior::kMergedWithPrevious: {
        bool previous_match = false;
        for (const Piece& piece : pieces) {
          if (piece.is_match && !previous_match && !kept.empty()) {
            kept.back().end = piece.range.end;
          } else {
            kept.push_back(piece.range);
          }
          previous_match = piece.is_match;
        }
        break;
      }
      case Behavior::kMergedWithNext: {
        bool previous_match = false;
        for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
          if (it->is_match && !previous_match && !kept.empty()) {
            kept.back().begin = it->range.begin;
          } else {
            kept.push_back(it->range);
          }
          previous_match = it->is_match;
        }
        std::reverse(kept.begin(), kept.end());
        break;
      }
    }
    for (const ByteRange& range : kept) {
      if (range.end == range.begin) continue;
      output.push_back(PreToken{word.text.substr(range.begin, range.end - range.begin),
                                word.at_start && range.begin == 0});
    }
  };

  for (PreToken& word : *words) {
    switch (step.kind) {
      case Step::Kind::kByteLevel: {
        if (step.add_prefix_space && !word.text.starts_with(' ')) word.text.insert(0, " ");
        std::vector<PreToken> pieces;
        if (step.regex != nullptr) {
          TANDEM_ASSIGN_OR_RETURN(auto matches, step.regex->FindAll(word.text));
          std::swap(output, pieces);
          split(word, matches, Behavior::kIsolated, false);
          std::swap(output, pieces);
        } else {
          pieces.push_back(std::move(word));
        }
        const auto& table = ByteToUnicode();
        for (PreToken& piece : pieces) {
          std::string mapped;
          mapped.reserve(piece.text.size() * 2);
          for (char c : piece.text) mapped.append(table[static_cast<uint8_t>(c)]);
          output.push_back(PreToken{std::move(mapped), piece.at_start});
        }
        break;
      }
      case Step::Kind::kSplit: {
        if (step.regex != nullptr) {
          TANDEM_ASSIGN_OR_RETURN(auto matches, step.regex->FindAll(word.text));
          split(word, matches, step.behavior, step.invert);
        } else {
          split(word, FindLiteral(word.text, step.literal), step.behavior, step.invert);
        }
        break;
      }
      case Step::Kind::kMetaspace: {
        PreToken replaced{absl::StrReplaceAll(word.text, {{" ", step.replacement}}),
                          word.at_start};
        const bool prepend =
            step.prepend == Step::Prepend::kAlways ||
            (step.prepend == Step::Prepend::kFirst && word.at_start);
        if (prepend && !replaced.text.starts_with(step.replacement)) {
          replaced.text.insert(0, step.replacement);
        }
        if (step.split) {
          split(replaced, FindLiteral(replaced.text, step.replacement), Behavior::kMergedWithNext,
                false);
        } else {
          output.push_back(std::move(replaced));
        }
        break;
      }
    }
  }
  *words = std::move(output);
  return absl::OkStatus();
}

}  // namespace tandem::tokenizer_internal
