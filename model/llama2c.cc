// The checkpoint half of model/llama2c.h (header, weights, the whole conversion); the tokenizer half
// is llama2c_tokenizer.cc.
#include "model/llama2c.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/numeric/int128.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "model/safetensors.h"
#include "nlohmann/json.hpp"
#include "tokenizer/tokenizer.h"

namespace tandem {
namespace {

constexpr int64_t kHeaderBytes = 7 * sizeof(int32_t);
// Versions 1 and 2 of llama2.c's export.py start with this uint32 ("ak42" little-endian).
constexpr uint32_t kVersionedMagic = 0x616b3432;

// Float32 values after the header, computed wide enough that no header can overflow it.
absl::int128 CheckpointFloats(const Llama2cHeader& h) {
  const absl::int128 dim = h.dim, hidden = h.hidden_dim, layers = h.n_layers, vocab = h.vocab_size;
  const absl::int128 kv_dim = h.kv_dim(), seq_len = h.seq_len, head_dim = h.head_dim();
  absl::int128 floats = vocab * dim;    // token_embedding
  floats += layers * dim;               // rms_att
  floats += 2 * layers * dim * dim;     // wq, wo
  floats += 2 * layers * kv_dim * dim;  // wk, wv
  floats += layers * dim;               // rms_ffn
  floats += 3 * layers * hidden * dim;  // w1, w2, w3
  floats += dim;                        // rms_final
  floats += seq_len * head_dim;         // freq_cis_real and freq_cis_imag, [seq_len, head_dim / 2] each
  if (!h.shared_classifier) floats += vocab * dim;  // wcls
  return floats;
}

std::string Int128Text(absl::int128 value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

absl::Status ErrnoStatus(const std::string& path, const char* doing, int error) {
  const std::string message = absl::StrCat(path, ": cannot ", doing, ": ", std::strerror(error));
  if (error == ENOENT) return absl::NotFoundError(message);
  if (error == EACCES) return absl::PermissionDeniedError(message);
  return absl::UnavailableError(message);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return ErrnoStatus(path, "open", errno);
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) return absl::DataLossError(absl::StrCat(path, ": read failed"));
  return contents.str();
}

absl::Status WriteFile(const std::string& path, std::string_view contents) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file) return ErrnoStatus(path, "create", errno);
  file.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  file.close();
  if (!file) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

// Reads the float32 arrays of a checkpoint front to back.
class ArrayReader {
 public:
  ArrayReader(const std::string& path, std::istream& in) : path_(path), in_(in) {}

  // The next `count` floats as raw little-endian bytes; `what` names them in errors.
  absl::StatusOr<std::string> Read(int64_t count, const std::string& what) {
    std::string bytes(static_cast<size_t>(count) * sizeof(float), '\0');
    const std::streamoff at = in_.tellg();
    if (!in_.read(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
      return absl::DataLossError(
          absl::StrCat(path_, ": read failed at byte ", static_cast<int64_t>(at), " (", what, ")"));
    }
    return bytes;
  }
  absl::Status Skip(int64_t count, const std::string& what) {
    if (!in_.seekg(static_cast<std::streamoff>(count * sizeof(float)), std::ios::cur)) {
      return absl::DataLossError(absl::StrCat(path_, ": seek failed (", what, ")"));
    }
    return absl::OkStatus();
  }

 private:
  const std::string& path_;
  std::istream& in_;
};

// llama2.c's row 2i + p of each head (pair i, element p of the pair) becomes Hugging Face's row
// p * head_dim/2 + i, so that HF's rotate-halves RoPE rotates the pairs llama2.c rotates.
// `rows`: [heads * head_dim, in] float32.
std::string PermuteRopeRows(std::string_view rows, int64_t heads, int64_t head_dim, int64_t in) {
  std::string out(rows.size(), '\0');
  const int64_t half = head_dim / 2;
  const size_t row_bytes = static_cast<size_t>(in) * sizeof(float);
  for (int64_t head = 0; head < heads; ++head) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t p = 0; p < 2; ++p) {
        const int64_t from = head * head_dim + 2 * i + p;
        const int64_t to = head * head_dim + p * half + i;
        std::memcpy(out.data() + to * row_bytes, rows.data() + from * row_bytes, row_bytes);
      }
    }
  }
  return out;
}

// The tensors of the checkpoint under their Hugging Face names, in file order.
absl::StatusOr<std::vector<TensorToWrite>> ReadWeights(const std::string& path, const Llama2cHeader& h) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return ErrnoStatus(path, "open", errno);
  file.seekg(kHeaderBytes);
  ArrayReader reader(path, file);
  const int64_t dim = h.dim, hidden = h.hidden_dim, kv_dim = h.kv_dim(), vocab = h.vocab_size;
  std::vector<TensorToWrite> tensors;
  auto read = [&](const std::string& name, std::vector<int64_t> shape) -> absl::Status {
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    TANDEM_ASSIGN_OR_RETURN(std::string bytes, reader.Read(count, name));
    tensors.push_back(TensorToWrite{name, DType::kF32, std::move(shape), std::move(bytes)});
    return absl::OkStatus();
  };
  auto layer_name = [](int32_t layer, const char* suffix) {
    return absl::StrCat("model.layers.", layer, ".", suffix);
  };
  // One [layers, ...] array: a tensor per layer.
  auto read_layers = [&](const char* suffix, std::vector<int64_t> shape) -> absl::Status {
    for (int32_t layer = 0; layer < h.n_layers; ++layer) {
      TANDEM_RETURN_IF_ERROR(read(layer_name(layer, suffix), shape));
    }
    return absl::OkStatus();
  };

  TANDEM_RETURN_IF_ERROR(read("model.embed_tokens.weight", {vocab, dim}));
  TANDEM_RETURN_IF_ERROR(read_layers("input_layernorm.weight", {dim}));
  TANDEM_RETURN_IF_ERROR(read_layers("self_attn.q_proj.weight", {dim, dim}));
  TANDEM_RETURN_IF_ERROR(read_layers("self_attn.k_proj.weight", {kv_dim, dim}));
  TANDEM_RETURN_IF_ERROR(read_layers("self_attn.v_proj.weight", {kv_dim, dim}));
  TANDEM_RETURN_IF_ERROR(read_layers("self_attn.o_proj.weight", {dim, dim}));
  TANDEM_RETURN_IF_ERROR(read_layers("post_attention_layernorm.weight", {dim}));
  TANDEM_RETURN_IF_ERROR(read_layers("mlp.gate_proj.weight", {hidden, dim}));  // w1
  TANDEM_RETURN_IF_ERROR(read_layers("mlp.down_proj.weight", {dim, hidden}));  // w2
  TANDEM_RETURN_IF_ERROR(read_layers("mlp.up_proj.weight", {hidden, dim}));    // w3
  TANDEM_RETURN_IF_ERROR(read("model.norm.weight", {dim}));
  TANDEM_RETURN_IF_ERROR(reader.Skip(int64_t{h.seq_len} * h.head_dim(), "freq_cis_real, freq_cis_imag"));
  if (!h.shared_classifier) TANDEM_RETURN_IF_ERROR(read("lm_head.weight", {vocab, dim}));

  for (TensorToWrite& tensor : tensors) {
    if (tensor.name.ends_with("q_proj.weight")) {
      tensor.bytes = PermuteRopeRows(tensor.bytes, h.n_heads, h.head_dim(), dim);
    } else if (tensor.name.ends_with("k_proj.weight")) {
      tensor.bytes = PermuteRopeRows(tensor.bytes, h.n_kv_heads, h.head_dim(), dim);
    }
  }
  return tensors;
}

std::string TokenizerConfigJson(const Llama2cHeader& header) {
  nlohmann::ordered_json config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                                   {"add_bos_token", true},
                                   {"add_eos_token", false},
                                   {"bos_token", "<s>"},
                                   {"eos_token", "</s>"},
                                   {"unk_token", "<unk>"},
                                   {"pad_token", nullptr},
                                   {"clean_up_tokenization_spaces", false},
                                   {"model_max_length", header.seq_len}};
  return config.dump(2) + "\n";
}

}  // namespace

std::string Llama2cHeaderText(const Llama2cHeader& h) {
  return absl::StrCat("dim ", h.dim, ", hidden_dim ", h.hidden_dim, ", n_layers ", h.n_layers, ", n_heads ",
                      h.n_heads, ", n_kv_heads ", h.n_kv_heads, ", vocab_size ",
                      h.shared_classifier ? "" : "-", h.vocab_size, ", seq_len ", h.seq_len);
}

absl::StatusOr<Llama2cHeader> ParseLlama2cHeader(std::string_view prefix, int64_t file_size,
                                                 std::string_view source_view) {
  const std::string source(source_view);
  if (file_size < kHeaderBytes || prefix.size() < static_cast<size_t>(kHeaderBytes)) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", file_size, " bytes, too short for the ",
                                                   kHeaderBytes, "-byte llama2.c header"));
  }
  int32_t fields[7];
  std::memcpy(fields, prefix.data(), sizeof fields);
  if (static_cast<uint32_t>(fields[0]) == kVersionedMagic) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": a llama2.c version ", fields[1], " export (magic \"ak42\"); only version 0 (legacy, ",
        "float32) checkpoints are supported: export with `export.py --version 0`"));
  }
  Llama2cHeader h;
  h.dim = fields[0];
  h.hidden_dim = fields[1];
  h.n_layers = fields[2];
  h.n_heads = fields[3];
  h.n_kv_heads = fields[4];
  h.shared_classifier = fields[5] > 0;
  h.vocab_size = fields[5] == INT32_MIN ? 0 : (fields[5] < 0 ? -fields[5] : fields[5]);
  h.seq_len = fields[6];
  const std::pair<const char*, int32_t> named[] = {
      {"dim", h.dim},         {"hidden_dim", h.hidden_dim}, {"n_layers", h.n_layers},
      {"n_heads", h.n_heads}, {"n_kv_heads", h.n_kv_heads}, {"seq_len", h.seq_len}};
  for (const auto& [name, value] : named) {
    if (value <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(source, ": header field ", name, " is ", value,
                                                     ", must be positive (header: ", Llama2cHeaderText(h),
                                                     ")"));
    }
  }
  if (h.vocab_size == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": header field vocab_size is ", fields[5],
        ", must be in [1, 2147483647] (shared classifier) or its negative (header: ", Llama2cHeaderText(h),
        ")"));
  }
  if (h.dim % h.n_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": dim ", h.dim, " is not divisible by n_heads ", h.n_heads));
  }
  if (h.head_dim() % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": head_dim ", h.head_dim(), " (dim ", h.dim,
                                                   " / n_heads ", h.n_heads, ") is odd; RoPE rotates pairs"));
  }
  if (h.n_heads % h.n_kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": n_heads ", h.n_heads, " is not divisible by n_kv_heads ", h.n_kv_heads));
  }
  const absl::int128 needed = kHeaderBytes + CheckpointFloats(h) * sizeof(float);
  if (needed != file_size) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", file_size, " bytes, the header (",
                                                   Llama2cHeaderText(h), ") needs ", Int128Text(needed)));
  }
  return h;
}

int64_t Llama2cCheckpointBytes(const Llama2cHeader& header) {
  return static_cast<int64_t>(kHeaderBytes + CheckpointFloats(header) * sizeof(float));
}

ModelConfig Llama2cModelConfig(const Llama2cHeader& h) {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.vocab_size = h.vocab_size;
  c.hidden_size = h.dim;
  c.intermediate_size = h.hidden_dim;
  c.num_hidden_layers = h.n_layers;
  c.num_attention_heads = h.n_heads;
  c.num_key_value_heads = h.n_kv_heads;
  c.head_dim = h.head_dim();
  c.max_position_embeddings = h.seq_len;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = h.shared_classifier;
  c.torch_dtype = DType::kF32;
  c.bos_token_ids = {1};
  c.eos_token_ids = {2, 1};
  return c;
}

absl::StatusOr<Llama2cConvertResult> ConvertLlama2c(const Llama2cConvertOptions& options) {
  if (options.out_dir.empty()) return absl::InvalidArgumentError("the output directory is empty");
  // Inputs first: nothing is written unless both files are sound.
  std::error_code error;
  const auto file_size = std::filesystem::file_size(options.checkpoint_path, error);
  if (error) {
    return ErrnoStatus(options.checkpoint_path, "read", error.value());
  }
  std::string prefix(kHeaderBytes, '\0');
  {
    std::ifstream file(options.checkpoint_path, std::ios::binary);
    if (!file) return ErrnoStatus(options.checkpoint_path, "open", errno);
    file.read(prefix.data(), kHeaderBytes);
    prefix.resize(static_cast<size_t>(file.gcount()));
  }
  TANDEM_ASSIGN_OR_RETURN(
      const Llama2cHeader header,
      ParseLlama2cHeader(prefix, static_cast<int64_t>(file_size), options.checkpoint_path));
  TANDEM_ASSIGN_OR_RETURN(const std::string tokenizer_bytes, ReadFile(options.tokenizer_path));
  TANDEM_ASSIGN_OR_RETURN(const Llama2cVocab vocab,
                          ParseLlama2cTokenizer(tokenizer_bytes, options.tokenizer_path));
  if (static_cast<int64_t>(vocab.pieces.size()) != header.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(options.tokenizer_path, ": ", vocab.pieces.size(),
                                                   " tokens, the checkpoint ", options.checkpoint_path,
                                                   " has vocab_size ", header.vocab_size));
  }
  TANDEM_ASSIGN_OR_RETURN(const Llama2cTokenizerJson tokenizer, MakeLlama2cTokenizerJson(vocab));
  // What we write must load: a failure here is a bug in this file, not in the inputs.
  absl::StatusOr<std::unique_ptr<Tokenizer>> loaded = Tokenizer::FromJson(tokenizer.json, "tokenizer.json");
  if (!loaded.ok()) return absl::InternalError(absl::StrCat("converted ", loaded.status().message()));
  if ((*loaded)->vocab_size() != header.vocab_size) {
    return absl::InternalError(absl::StrCat("converted tokenizer.json has ", (*loaded)->vocab_size(),
                                            " tokens, the checkpoint ", header.vocab_size));
  }
  TANDEM_ASSIGN_OR_RETURN(std::vector<TensorToWrite> tensors, ReadWeights(options.checkpoint_path, header));

  std::filesystem::create_directories(options.out_dir, error);
  if (error) return ErrnoStatus(options.out_dir, "create directory", error.value());
  const std::string& dir = options.out_dir;
  TANDEM_RETURN_IF_ERROR(WriteFile(dir + "/config.json", ModelConfigToJson(Llama2cModelConfig(header))));
  TANDEM_RETURN_IF_ERROR(WriteSafetensors(dir + "/model.safetensors", tensors, {{"format", "pt"}}));
  TANDEM_RETURN_IF_ERROR(WriteFile(dir + "/tokenizer.json", tokenizer.json));
  TANDEM_RETURN_IF_ERROR(WriteFile(dir + "/tokenizer_config.json", TokenizerConfigJson(header)));

  Llama2cConvertResult result;
  result.header = header;
  result.num_tensors = static_cast<int64_t>(tensors.size());
  result.num_merges = tokenizer.num_merges;
  result.tied_scores = tokenizer.tied_scores;
  return result;
}

}  // namespace tandem
