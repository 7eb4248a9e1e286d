// relu-serve-make-model: `relu-serve make-model` without Node. Writes the same synthetic
// GGUF / PowerInfer (PWRI) models, byte for byte, for the same arguments, so machines with
// a compiler but no Node (the lent GPU machines) make their test models locally instead
// of copying gigabytes. test/gguf/make-model-native.test.ts compares the two writers.
//
//   relu-serve-make-model --out FILE [--arch llama|bamboo] [--size tiny|small|1b|7b]
//     [--type f32|f16|bf16|q8_0|q4_0|q4_k|q5_k|q6_k] [--seed N] [--vocab-size N] [--relu]
//     [--tied] [--sparse [--sparsity X] [--predictor exact|lowrank] [--predictor-rank R]
//     [--threshold T]] [--threads N] [--vocab FILE] [--quiet]
//
// Tensors draw from their own random streams, so they are generated in parallel (whole
// tensors, in order of the file, a bounded amount ahead of the writer) and written in
// file order. Exit status: 0 written; 1 failed (I/O, missing fixture); 2 refused (bad or
// unsupported options).
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "synthetic.h"

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

const char kUsage[] =
    "usage: relu-serve-make-model --out FILE [--arch llama|bamboo] [--size tiny|small|1b|7b]\n"
    "  [--type f32|f16|bf16|q8_0|q4_0|q4_k|q5_k|q6_k] [--seed N] [--vocab-size N] [--relu] [--tied]\n"
    "  [--sparse [--sparsity X] [--predictor exact|lowrank] [--predictor-rank R] [--threshold T]]\n"
    "  [--threads N] [--vocab FILE] [--quiet]\n"
    "Writes the model `relu-serve make-model` writes for the same options, byte for byte.\n"
    "--vocab: the tokenizer fixture (default: test/fixtures/spm/vocab.json of the checkout\n"
    "around the current directory or this program). --threads: default all cores.\n";

[[noreturn]] void fail(const std::string &msg, int code) {
  std::fprintf(stderr, "relu-serve-make-model: %s\n", msg.c_str());
  std::exit(code);
}

// --seed: an integer of any size, taken modulo 2^64 (negative numbers wrap), as
// parseSeed + toSeed64 do with a BigInt.
uint64_t parse_seed(const std::string &v) {
  size_t i = v.size() > 0 && v[0] == '-' ? 1 : 0;
  if (i == v.size()) throw mm::Refusal("--seed: \"" + v + "\" is not an integer");
  uint64_t n = 0;
  for (; i < v.size(); i++) {
    if (v[i] < '0' || v[i] > '9') throw mm::Refusal("--seed: \"" + v + "\" is not an integer");
    n = n * 10 + static_cast<uint64_t>(v[i] - '0');  // wraps modulo 2^64
  }
  return v[0] == '-' ? 0 - n : n;
}

// A JS Number(v) for decimal input (surrounding blanks allowed), finite; anything else is
// refused (Number would also take 0x/0b/0o forms: refused here, never mis-read).
double parse_number(const std::string &flag, const std::string &v) {
  const size_t a = v.find_first_not_of(" \t\n\r");
  const size_t b = v.find_last_not_of(" \t\n\r");
  const std::string t = a == std::string::npos ? "" : v.substr(a, b - a + 1);
  bool ok = !t.empty() && t.find_first_not_of("+-0123456789.eE") == std::string::npos;
  char *end = nullptr;
  const double n = ok ? std::strtod(t.c_str(), &end) : 0;
  if (!ok || *end != '\0' || !std::isfinite(n)) throw mm::Refusal(flag + ": \"" + v + "\" is not a number");
  return n;
}

int64_t parse_positive_int(const std::string &flag, const std::string &v) {
  double n = 0;
  try {
    n = parse_number(flag, v);
  } catch (const mm::Refusal &) {
    n = 0;
  }
  if (n != std::trunc(n) || n <= 0 || n > 9007199254740991.0)
    throw mm::Refusal(flag + ": \"" + v + "\" is not a positive integer");
  return static_cast<int64_t>(n);
}

struct Cli {
  mm::Options model;
  int threads = 0;
  std::string vocab;
};

Cli parse_args(int argc, char **argv) {
  Cli c;
  mm::Options &o = c.model;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i], v;
    const bool takes_value = a != "--relu" && a != "--tied" && a != "--sparse" && a != "--quiet" && a != "--help" &&
                             a != "-h" && a.rfind("--", 0) == 0 && a.find('=') == std::string::npos;
    const size_t eq = a.find('=');
    if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else if (takes_value) {
      if (i + 1 >= argc) throw mm::Refusal(a + ": missing value");
      v = argv[++i];
    }
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--out") o.out = v;
    else if (a == "--arch") o.arch = v;
    else if (a == "--size") o.size = v;
    else if (a == "--type") o.type = v;
    else if (a == "--seed") o.seed = parse_seed(v);
    else if (a == "--vocab-size") o.vocab_size = parse_positive_int(a, v);
    else if (a == "--relu") o.relu = true;
    else if (a == "--tied") o.tied = true;
    else if (a == "--sparse") o.sparse = true;
    else if (a == "--sparsity") o.sparsity = parse_number(a, v);
    else if (a == "--predictor") o.predictor = v;
    else if (a == "--predictor-rank") o.predictor_rank = parse_positive_int(a, v);
    else if (a == "--threshold") o.threshold = parse_number(a, v);
    else if (a == "--threads") c.threads = static_cast<int>(std::min<int64_t>(256, parse_positive_int(a, v)));
    else if (a == "--vocab") c.vocab = v;
    else if (a == "--quiet") continue;  // nothing is printed while writing anyway
    else throw mm::Refusal("unknown or unsupported option '" + a + "' (--help lists the options)");
  }
  if (o.out.empty()) throw mm::Refusal("--out: an output file is required");
  return c;
}

// test/fixtures/spm/vocab.json of the checkout around `start` (walking up), or "".
std::string find_fixture(fs::path start) {
  std::error_code ec;
  start = fs::absolute(start, ec);
  for (fs::path d = start; !d.empty(); d = d.parent_path()) {
    const fs::path f = d / "test" / "fixtures" / "spm" / "vocab.json";
    if (fs::exists(f, ec) && fs::exists(d / "package.json", ec)) return f.string();
    if (d == d.parent_path()) break;
  }
  return "";
}

// Generates tensors on `threads` workers in file order, at most `budget` bytes of finished
// but unwritten tensors ahead of the writer (and always at least one), and writes them.
class ParallelWriter {
 public:
  ParallelWriter(const mm::ModelSpec &spec, int threads) : spec_(spec), threads_(threads), slots_(spec.tensors.size()) {}

  void write(std::FILE *f, const std::vector<uint8_t> &header, const std::vector<int64_t> &offsets) {
    put(f, header.data(), header.size());
    std::vector<std::thread> pool;
    for (int i = 0; i < threads_; i++) pool.emplace_back([this] { work(); });
    std::exception_ptr err;
    try {
      int64_t pos = 0;  // relative to the data section, which starts aligned
      for (size_t i = 0; i < slots_.size(); i++) {
        std::vector<uint8_t> data;
        {
          std::unique_lock<std::mutex> lock(mu_);
          cv_.wait(lock, [&] { return slots_[i].ready || error_; });
          if (error_) std::rethrow_exception(error_);
          data.swap(slots_[i].data);
        }
        if (pos != offsets[i]) throw std::runtime_error("internal error: tensor offset mismatch");
        put(f, data.data(), data.size());
        pos += static_cast<int64_t>(data.size());
        // Pad to the next tensor's offset (also after the last one, like the TS writer).
        const int64_t next = mm::align_up(pos, mm::kAlignment);
        static const uint8_t zeros[mm::kAlignment] = {};
        put(f, zeros, static_cast<size_t>(next - pos));
        pos = next;
        std::lock_guard<std::mutex> lock(mu_);
        in_flight_ -= bytes_of(i);
        cv_.notify_all();
      }
    } catch (...) {
      err = std::current_exception();
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = err;
      cv_.notify_all();
    }
    for (std::thread &t : pool) t.join();
    if (err) std::rethrow_exception(err);
  }

 private:
  struct Slot {
    std::vector<uint8_t> data;
    bool ready = false;
  };
  static constexpr int64_t kBudget = int64_t(1) << 30;

  int64_t bytes_of(size_t i) const {
    const mm::Tensor &t = spec_.tensors[i];
    int64_t rows = 1;
    for (size_t d = 1; d < t.dims.size(); d++) rows *= t.dims[d];
    return mm::row_bytes(*t.type, t.dims[0]) * rows;
  }

  static void put(std::FILE *f, const void *p, size_t n) {
    if (n > 0 && std::fwrite(p, 1, n, f) != n) throw std::runtime_error(std::string("write failed: ") + std::strerror(errno));
  }

  void work() {
    for (;;) {
      size_t i;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] {
          return error_ || next_ == slots_.size() || in_flight_ == 0 || in_flight_ + bytes_of(next_) <= kBudget;
        });
        if (error_ || next_ == slots_.size()) return;
        i = next_++;
        in_flight_ += bytes_of(i);
      }
      try {
        std::vector<uint8_t> data = generate(i);
        std::lock_guard<std::mutex> lock(mu_);
        slots_[i].data = std::move(data);
        slots_[i].ready = true;
        cv_.notify_all();
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
        cv_.notify_all();
        return;
      }
    }
  }

  // Tensor i's bytes: rows filled in order from its stream Rng(seed, i + 1), each encoded.
  std::vector<uint8_t> generate(size_t i) const {
    const mm::Tensor &t = spec_.tensors[i];
    const int64_t ne0 = t.dims[0];
    const int64_t rows = t.dims.size() > 1 ? t.dims[1] : 1;
    const int64_t rb = mm::row_bytes(*t.type, ne0);
    std::vector<uint8_t> out(static_cast<size_t>(rb * rows));
    std::vector<float> row(static_cast<size_t>(ne0));
    mm::Rng rng(spec_.seed, i + 1);
    for (int64_t r = 0; r < rows; r++) {
      spec_.fill_row(i, rng, r, row.data());
      mm::encode_row(*t.type, row.data(), out.data() + r * rb, ne0);
    }
    return out;
  }

  const mm::ModelSpec &spec_;
  const int threads_;
  std::vector<Slot> slots_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t next_ = 0;
  int64_t in_flight_ = 0;
  std::exception_ptr error_;
};

}  // namespace

int main(int argc, char **argv) {
  const uint32_t one = 1;
  uint8_t first;
  std::memcpy(&first, &one, 1);
  if (first != 1) fail("this tool writes little-endian files from a little-endian host only", 2);

  const auto t0 = Clock::now();
  Cli cli;
  try {
    cli = parse_args(argc, argv);
  } catch (const mm::Refusal &e) {
    fail(e.what(), 2);
  }
  std::string vocab_path = cli.vocab;
  if (vocab_path.empty()) vocab_path = find_fixture(fs::current_path());
  if (vocab_path.empty() && argc > 0) vocab_path = find_fixture(fs::path(argv[0]).parent_path());
  if (vocab_path.empty())
    fail("cannot find the tokenizer fixture test/fixtures/spm/vocab.json: run inside the checkout or pass --vocab FILE", 1);

  std::unique_ptr<mm::ModelSpec> spec;
  try {
    const mm::Vocab fixture = mm::load_vocab_json(vocab_path);
    spec = std::make_unique<mm::ModelSpec>(cli.model, fixture);
  } catch (const mm::Refusal &e) {
    fail(e.what(), 2);
  } catch (const std::exception &e) {
    fail(e.what(), 1);
  }

  // Written under a temporary name and renamed at the end, so a failed or interrupted run
  // never leaves a half-written model under the real name.
  std::random_device rd;
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, ".tmp-%08x", static_cast<unsigned>(rd()));
  const std::string out = cli.model.out, tmp = out + suffix;
  int threads = cli.threads > 0 ? cli.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  threads = static_cast<int>(std::min<size_t>(static_cast<size_t>(threads), spec->tensors.size()));
  std::FILE *f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail("cannot create " + tmp + ": " + std::strerror(errno), 1);
  try {
    std::vector<int64_t> offsets;
    const std::vector<uint8_t> header = spec->header(offsets);
    ParallelWriter(*spec, threads).write(f, header, offsets);
    if (std::fclose(f) != 0) {
      f = nullptr;
      throw std::runtime_error(std::string("closing the file failed: ") + std::strerror(errno));
    }
    f = nullptr;
    std::error_code ec;
    fs::rename(tmp, out, ec);
    if (ec) throw std::runtime_error("cannot rename " + tmp + " to " + out + ": " + ec.message());
  } catch (const std::exception &e) {
    if (f) std::fclose(f);
    std::remove(tmp.c_str());
    fail(e.what(), 1);
  }
  std::error_code ec;
  const double mib = static_cast<double>(fs::file_size(out, ec)) / (1 << 20);
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("wrote %s: %zu tensors, %.1f MiB in %.1f s\n", out.c_str(), spec->tensors.size(), mib, s);
  return 0;
}
