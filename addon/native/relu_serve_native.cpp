// relu-serve-native: greedy generation from token ids over the engine's C ABI, with no
// Node. For machines that have a compiler (and a GPU) but no Node, such as the lent GPU
// machines, and for timing the engine alone. Given the same prompt ids it gives the same
// ids as `relu-serve generate --json --temperature 0 --repeat-penalty 1`.
//
//   relu-serve-native --model FILE --tokens 1,2,3 -n N [--device cpu|cuda|emu|auto]
//     [--vram-budget 8GiB|40%] [--placement FILE] [--threads N] [--ctx N] [--ffn-mode M]
//     [--emu-latency-us US] [--emu-memory SIZE] [--ignore-eos] [--down-int8] [--json]
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "relu_serve.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

[[noreturn]] void fail(const std::string &msg, int code = 2) {
  std::fprintf(stderr, "relu-serve-native: %s\n", msg.c_str());
  std::exit(code);
}

// "8GiB", "512MiB", "1e9", "1.5GB" (binary units for Ki/Mi/Gi, decimal for K/M/G).
uint64_t parse_size(const std::string &s) {
  char *end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  std::string unit(end);
  for (char &c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  double mul = 1;
  if (!unit.empty() && unit.back() == 'b') unit.pop_back();
  if (unit.empty()) mul = 1;
  else if (unit == "k") mul = 1e3;
  else if (unit == "m") mul = 1e6;
  else if (unit == "g") mul = 1e9;
  else if (unit == "ki") mul = 1024.0;
  else if (unit == "mi") mul = 1024.0 * 1024;
  else if (unit == "gi") mul = 1024.0 * 1024 * 1024;
  else fail("cannot read '" + s + "' as a size (examples: 8GiB, 512MiB, 1e9)");
  if (!(v >= 0) || end == s.c_str()) fail("cannot read '" + s + "' as a size");
  return static_cast<uint64_t>(v * mul);
}

std::vector<int32_t> parse_tokens(const std::string &s) {
  std::vector<int32_t> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    const std::string t = s.substr(i, j - i);
    char *end = nullptr;
    const long v = std::strtol(t.c_str(), &end, 10);
    if (t.empty() || *end != '\0' || v < 0 || v > 0x7fffffff) fail("--tokens: '" + t + "' is not a token id");
    out.push_back(static_cast<int32_t>(v));
    i = j + 1;
  }
  if (out.empty()) fail("--tokens: no token ids");
  return out;
}

std::string json_str(const char *s) {
  std::string o = "\"";
  for (const char *p = s; p && *p; p++) {
    if (*p == '"' || *p == '\\') o += '\\';
    if (static_cast<unsigned char>(*p) < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", *p);
      o += b;
    } else {
      o += *p;
    }
  }
  return o + "\"";
}

void check(rs_status s, const rs_error &err, const char *what) {
  if (s != RS_OK) fail(std::string(what) + ": " + err.message, 1);
}

int32_t eos_id(const rs_model *m) {
  for (int64_t i = 0; i < rs_model_meta_count(m); i++) {
    rs_meta_kv kv;
    rs_model_meta_get(m, i, &kv);
    if (std::string(kv.key.data, kv.key.len) == "tokenizer.ggml.eos_token_id") return static_cast<int32_t>(kv.v.u);
  }
  return -1;
}

}  // namespace

int main(int argc, char **argv) {
  std::string model, tokens_arg, device = "auto", budget, placement, ffn_mode = "auto", emu_memory;
  int n_gen = 16, threads = 0, ctx_size = 0, emu_latency = 0;
  bool json = false, ignore_eos = false, down_int8 = false;
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail(a + " needs a value");
      return argv[++i];
    };
    if (a == "--model" || a == "-m") model = value();
    else if (a == "--tokens") tokens_arg = value();
    else if (a == "-n" || a == "--max-tokens") n_gen = std::atoi(value().c_str());
    else if (a == "--device") device = value();
    else if (a == "--vram-budget") budget = value();
    else if (a == "--placement") placement = value();
    else if (a == "--threads" || a == "-t") threads = std::atoi(value().c_str());
    else if (a == "--ctx") ctx_size = std::atoi(value().c_str());
    else if (a == "--ffn-mode") ffn_mode = value();
    else if (a == "--emu-latency-us") emu_latency = std::atoi(value().c_str());
    else if (a == "--emu-memory") emu_memory = value();
    else if (a == "--ignore-eos") ignore_eos = true;
    else if (a == "--down-int8") down_int8 = true;
    else if (a == "--json") json = true;
    else if (a == "--help" || a == "-h") {
      std::printf(
          "relu-serve-native --model FILE --tokens 1,2,3 -n N [--device cpu|cuda|emu|auto] [--vram-budget 8GiB|40%%]\n"
          "  [--placement FILE.rspl|.gpuidx] [--threads N] [--ctx N] [--ffn-mode auto|dense|exact|predictor]\n"
          "  [--emu-latency-us US] [--emu-memory SIZE] [--ignore-eos] [--down-int8] [--json]\n"
          "Greedy generation from token ids; prints the generated ids (and timings with --json).\n");
      return 0;
    } else fail("unknown option " + a + " (see --help)");
  }
  if (model.empty()) fail("--model FILE is required");
  if (tokens_arg.empty()) fail("--tokens is required");
  if (n_gen < 0) fail("-n must be >= 0");
  const std::vector<int32_t> prompt = parse_tokens(tokens_arg);

  rs_error err{};
  const auto t_load = Clock::now();
  rs_model *m = nullptr;
  rs_model_params mp;
  rs_model_params_default(&mp);
  mp.down_int8 = down_int8;  // rs_model_params.down_int8: Q4_0 down rows summed in 8-bit integers
  check(rs_model_load(model.c_str(), &mp, &m, &err), err, "loading the model");
  rs_model_info mi;
  rs_model_get_info(m, &mi);
  for (int32_t t : prompt)
    if (t >= mi.n_vocab) fail("--tokens: " + std::to_string(t) + " is outside the vocabulary (" + std::to_string(mi.n_vocab) + ")");

  rs_context_params p;
  rs_context_params_default(&p);
  const int need = static_cast<int>(prompt.size()) + n_gen;
  p.n_ctx = ctx_size > 0 ? ctx_size : need;
  if (p.n_ctx < need) fail("--ctx " + std::to_string(p.n_ctx) + " is shorter than the prompt plus -n");
  p.n_batch = std::min<int>(512, static_cast<int>(prompt.size()));
  p.n_threads = threads;
  p.device = device.c_str();
  p.ffn_mode = ffn_mode.c_str();
  p.emu_latency_us = emu_latency;
  if (!emu_memory.empty()) p.emu_memory = parse_size(emu_memory);
  if (!budget.empty()) {
    if (budget.back() == '%') {
      const double f = std::atof(budget.c_str()) / 100.0;
      if (!(f > 0 && f <= 1)) fail("--vram-budget " + budget + ": a share must be in (0%, 100%]");
      p.vram_budget_fraction = f;
    } else {
      p.vram_budget = parse_size(budget);
    }
  }
  if (!placement.empty()) p.placement_path = placement.c_str();
  rs_context *ctx = nullptr;
  check(rs_context_new(m, &p, &ctx, &err), err, "creating the context");
  const double load_ms = ms_since(t_load);

  const int32_t eos = ignore_eos ? -1 : eos_id(m);
  std::vector<float> logits(static_cast<size_t>(mi.n_vocab));
  std::vector<int32_t> out;
  auto argmax = [&]() {
    int32_t best = 0;
    for (int32_t v = 1; v < mi.n_vocab; v++)
      if (logits[static_cast<size_t>(v)] > logits[static_cast<size_t>(best)]) best = v;
    return best;
  };
  // The prompt in steps of up to 512 rows, logits of its last row.
  const auto t_prompt = Clock::now();
  for (size_t i = 0; i < prompt.size(); i += 512) {
    const int n = static_cast<int>(std::min<size_t>(512, prompt.size() - i));
    std::vector<int32_t> pos(static_cast<size_t>(n)), seq(static_cast<size_t>(n), 0);
    std::vector<uint8_t> want(static_cast<size_t>(n), 0);
    for (int j = 0; j < n; j++) pos[static_cast<size_t>(j)] = static_cast<int32_t>(i) + j;
    want[static_cast<size_t>(n - 1)] = 1;
    check(rs_decode(ctx, n, prompt.data() + i, pos.data(), seq.data(), want.data(), logits.data(), &err), err, "decoding the prompt");
  }
  const double prompt_ms = ms_since(t_prompt);
  rs_hybrid_stats after_prompt;
  rs_context_get_hybrid_stats(ctx, &after_prompt);
  rs_sparsity_info sparsity_after_prompt;
  rs_context_get_sparsity(ctx, &sparsity_after_prompt, nullptr, nullptr);
  const auto t_gen = Clock::now();
  const char *finish = "length";
  while (static_cast<int>(out.size()) < n_gen) {
    const int32_t tok = argmax();
    if (tok == eos) {
      finish = "stop";
      break;
    }
    out.push_back(tok);
    if (static_cast<int>(out.size()) >= n_gen) break;
    const int32_t pos = static_cast<int32_t>(prompt.size() + out.size() - 1), seq = 0;
    const uint8_t want = 1;
    check(rs_decode(ctx, 1, &tok, &pos, &seq, &want, logits.data(), &err), err, "decoding");
  }
  const double gen_ms = ms_since(t_gen);

  if (!json) {
    for (size_t i = 0; i < out.size(); i++) std::printf("%s%d", i ? "," : "", out[i]);
    std::printf("\n");
  } else {
    rs_device_info di;
    std::vector<uint32_t> hot(static_cast<size_t>(mi.n_layer));
    rs_context_get_device_info(ctx, &di, hot.data());
    rs_hybrid_stats hs;
    rs_context_get_hybrid_stats(ctx, &hs);
    const rs_hybrid_stats &p0 = after_prompt;  // generation alone: the difference
    rs_context_stats cs;
    rs_context_get_stats(ctx, &cs);
    rs_sparsity_info si;
    rs_context_get_sparsity(ctx, &si, nullptr, nullptr);
    std::string ids, pids, hots;
    for (size_t i = 0; i < out.size(); i++) ids += (i ? "," : "") + std::to_string(out[i]);
    for (size_t i = 0; i < prompt.size(); i++) pids += (i ? "," : "") + std::to_string(prompt[i]);
    for (size_t i = 0; i < hot.size(); i++) hots += (i ? "," : "") + std::to_string(hot[i]);
    const double gen_tps = out.size() > 1 ? (out.size() - 1) * 1000.0 / gen_ms : 0;
    std::printf(
        "{\"model\":%s,\"prompt_tokens\":[%s],\"tokens\":[%s],\"finish_reason\":\"%s\",\n"
        " \"timings\":{\"load_ms\":%.3f,\"prompt_ms\":%.3f,\"prompt_tokens_per_s\":%.3f,\"gen_ms\":%.3f,\"gen_tokens_per_s\":%.3f},\n"
        " \"engine\":{\"threads\":%d,\"isa\":%s,\"ffn_mode\":%s,\"threshold\":%g,"
        "\"gen_phase_ms\":{\"attention\":%.3f,\"select\":%.3f,\"ffn\":%.3f,\"output\":%.3f}},\n"
        " \"device\":{\"type\":%s,\"name\":%s,\"memory_total\":%llu,\"memory_free\":%llu,\"budget\":%llu,\"budget_from\":%s,"
        "\"used\":%llu,\"bytes\":{\"attention\":%llu,\"predictors\":%llu,\"norms\":%llu,\"output\":%llu,\"kv_cache\":%llu,"
        "\"index\":%llu,\"workspace\":%llu,\"ffn\":%llu},\"ffn_all\":%llu,\"hot_neurons\":[%s],\"placement\":%s},\n"
        " \"hybrid\":{\"steps\":%llu,\"replayed_steps\":%llu,\"recordings\":%llu,\"neurons_device\":%llu,\"neurons_host\":%llu,\"device_busy_ms\":%.3f,"
        "\"device_wait_ms\":%.3f,\"host_ffn_ms\":%.3f,\"wall_ms\":%.3f,\"phase_ms\":{\"attention\":%.3f,"
        "\"predictor\":%.3f,\"hot_ffn\":%.3f,\"transfer_wait\":%.3f,\"merge\":%.3f,\"output\":%.3f}},\n"
        " \"decode\":{\"steps\":%llu,\"neurons_device\":%llu,\"neurons_host\":%llu,\"device_busy_ms\":%.3f,"
        "\"device_wait_ms\":%.3f,\"host_ffn_ms\":%.3f,\"wall_ms\":%.3f,\"phase_ms\":{\"attention\":%.3f,"
        "\"predictor\":%.3f,\"hot_ffn\":%.3f,\"transfer_wait\":%.3f,\"merge\":%.3f,\"output\":%.3f}},\n"
        " \"model_info\":{\"n_layer\":%d,\"n_embd\":%d,\"n_ff\":%d,\"neuron_bytes\":%llu,\"non_ffn_bytes\":%llu,"
        "\"predictor_bytes\":%llu,\"bytes_per_token\":%llu}}\n",
        json_str(model.c_str()).c_str(), pids.c_str(), ids.c_str(), finish, load_ms, prompt_ms,
        prompt.size() * 1000.0 / prompt_ms, gen_ms, gen_tps, cs.n_threads, json_str(cs.isa).c_str(),
        json_str(si.ffn_mode).c_str(), si.threshold, si.attention_ms - sparsity_after_prompt.attention_ms,
        si.select_ms - sparsity_after_prompt.select_ms, si.ffn_ms - sparsity_after_prompt.ffn_ms,
        si.output_ms - sparsity_after_prompt.output_ms, json_str(di.device).c_str(), json_str(di.name).c_str(),
        (unsigned long long)di.memory_total, (unsigned long long)di.memory_free, (unsigned long long)di.budget,
        json_str(di.budget_from).c_str(), (unsigned long long)di.used, (unsigned long long)di.attention,
        (unsigned long long)di.predictors, (unsigned long long)di.norms, (unsigned long long)di.output,
        (unsigned long long)di.kv_cache, (unsigned long long)di.index, (unsigned long long)di.workspace,
        (unsigned long long)di.ffn, (unsigned long long)di.ffn_all, hots.c_str(), json_str(di.placement_source).c_str(),
        (unsigned long long)hs.steps, (unsigned long long)hs.replayed_steps, (unsigned long long)hs.recordings,
        (unsigned long long)hs.pairs_device, (unsigned long long)hs.pairs_host,
        hs.device_busy_ms, hs.device_wait_ms, hs.host_ffn_ms, hs.wall_ms, hs.attention_ms, hs.predictor_ms,
        hs.hot_ffn_ms, hs.transfer_wait_ms, hs.merge_ms, hs.output_ms, (unsigned long long)(hs.steps - p0.steps),
        (unsigned long long)(hs.pairs_device - p0.pairs_device), (unsigned long long)(hs.pairs_host - p0.pairs_host),
        hs.device_busy_ms - p0.device_busy_ms, hs.device_wait_ms - p0.device_wait_ms, hs.host_ffn_ms - p0.host_ffn_ms,
        hs.wall_ms - p0.wall_ms, hs.attention_ms - p0.attention_ms, hs.predictor_ms - p0.predictor_ms,
        hs.hot_ffn_ms - p0.hot_ffn_ms, hs.transfer_wait_ms - p0.transfer_wait_ms, hs.merge_ms - p0.merge_ms,
        hs.output_ms - p0.output_ms, mi.n_layer, mi.n_embd, mi.n_ff,
        (unsigned long long)mi.neuron_bytes, (unsigned long long)mi.non_ffn_bytes,
        (unsigned long long)mi.predictor_bytes, (unsigned long long)mi.bytes_per_token);
  }
  rs_context_free(ctx);
  rs_model_free(m);
  return 0;
}
