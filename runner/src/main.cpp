// dotcom_runner: time one ExecuTorch program (.pte or .bpte) and write a
// latency-report v1 JSON (report/schemas/latency-report.v1.schema.json).
//
// Failures are one line on stderr and a non-zero exit; with --out an error
// report (status "error") is written too, even when the runtime crashes on a
// corrupt file (a signal handler writes a report rendered in advance).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "device_info.h"
#include "json.h"
#include "runner.h"
#include "stats.h"

#ifndef DOTCOM_EXECUTORCH_VERSION
#define DOTCOM_EXECUTORCH_VERSION ""
#endif

namespace {

using dotcom::Json;

constexpr const char* kUsage = R"(usage: dotcom_runner --model FILE.pte|FILE.bpte [options]
       dotcom_runner --selftest-stats report/schemas/stats_vectors.json

Times the `forward` method of an ExecuTorch program and writes a latency-report v1.

  --model PATH          .pte or .bpte (BundledProgram) to run
  --threads N           XNNPACK/runtime thread pool size (0: runtime default) [0]
  --warmup W            untimed runs, the first inference included [10]
  --iters I             timed runs per repeat [50]
  --repeats R           repeats of the timed runs [3]
  --input KIND          random | zeros | bundled [bundled for .bpte, else random]
  --input-file PATH     raw bytes of every tensor input, in order (reported as input "file")
  --seed S              seed of the random input [0]
  --verify              compare outputs with the .bpte's expected outputs
  --rtol X / --atol X   verification tolerances [1e-5 / 1e-8]
  --dump-outputs PATH   write raw bytes of every tensor output, in order
  --etdump PATH         profile every run and write the ETDump here (per-operator
                        times for perf/layer_speed.py; the latencies include the
                        profiler's cost)
  --out PATH            write the report here (else to stdout)
  --backend NAME        artifact.backend [from the file name or the program]
  --quantization NAME   artifact.quantization [from the file name: fp32, fp16, q8]
  --model-name NAME     artifact.model
  --method NAME         method to run [forward]
  --verbose             print the runtime's log lines
  --selftest-stats PATH check the statistics against the test vectors and exit
)";

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "dotcom_runner: error: %s (see --help)\n", msg.c_str());
  std::exit(2);
}

struct Cli {
  dotcom::RunOptions run;
  std::string out;
  std::string backend, quantization, model_name;
  std::string selftest_stats;
};

int parse_int(const std::string& flag, const std::string& v, int min) {
  char* end = nullptr;
  long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || x < min || x > 1000000) {
    usage_error(flag + " needs an integer >= " + std::to_string(min) + ", got '" + v + "'");
  }
  return static_cast<int>(x);
}

double parse_double(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !(x >= 0)) usage_error(flag + " needs a number >= 0, got '" + v + "'");
  return x;
}

Cli parse_args(int argc, char** argv) {
  Cli cli;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    std::string value;
    size_t eq = a.find('=');
    bool inline_value = a.rfind("--", 0) == 0 && eq != std::string::npos;
    if (inline_value) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    auto next = [&]() -> std::string {
      if (inline_value) return value;
      if (i + 1 >= args.size()) usage_error(a + " needs a value");
      return args[++i];
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--version") {
      std::printf("dotcom_runner (ExecuTorch %s)\n", DOTCOM_EXECUTORCH_VERSION);
      std::exit(0);
    } else if (a == "--model") cli.run.model_path = next();
    else if (a == "--method") cli.run.method = next();
    else if (a == "--threads") cli.run.threads = parse_int(a, next(), 0);
    else if (a == "--warmup") cli.run.warmup = parse_int(a, next(), 0);
    else if (a == "--iters") cli.run.iters = parse_int(a, next(), 1);
    else if (a == "--repeats") cli.run.repeats = parse_int(a, next(), 1);
    else if (a == "--input") {
      cli.run.input = next();
      if (cli.run.input != "random" && cli.run.input != "zeros" && cli.run.input != "bundled") {
        usage_error("--input must be random, zeros or bundled, got '" + cli.run.input + "'");
      }
    } else if (a == "--input-file") {
      cli.run.input_file = next();
      cli.run.input = "file";
    } else if (a == "--seed") cli.run.seed = static_cast<uint64_t>(parse_int(a, next(), 0));
    else if (a == "--verify") cli.run.verify = true;
    else if (a == "--rtol") cli.run.rtol = parse_double(a, next());
    else if (a == "--atol") cli.run.atol = parse_double(a, next());
    else if (a == "--dump-outputs") cli.run.dump_outputs = next();
    else if (a == "--etdump") cli.run.etdump = next();
    else if (a == "--out") cli.out = next();
    else if (a == "--backend") cli.backend = next();
    else if (a == "--quantization") cli.quantization = next();
    else if (a == "--model-name") cli.model_name = next();
    else if (a == "--verbose") cli.run.verbose = true;
    else if (a == "--selftest-stats") cli.selftest_stats = next();
    else usage_error("unknown option '" + a + "'");
  }
  if (cli.selftest_stats.empty() && cli.run.model_path.empty()) usage_error("--model is required");
  return cli;
}

// ---- statistics self-test ------------------------------------------------

int selftest_stats(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    std::fprintf(stderr, "dotcom_runner: error: cannot open '%s'\n", path.c_str());
    return 2;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  Json doc;
  try {
    doc = Json::parse(ss.str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dotcom_runner: error: %s: %s\n", path.c_str(), e.what());
    return 2;
  }
  const double tol = doc.has("tolerance_rel") ? doc.at("tolerance_rel").as_number() : 1e-9;
  int failures = 0, checks = 0;
  for (const Json& c : doc.at("cases").elements()) {
    std::vector<double> xs;
    for (const Json& x : c.at("samples").elements()) xs.push_back(x.as_number());
    dotcom::LatencyStats s = dotcom::summarize(xs);
    const std::pair<const char*, double> got[] = {
        {"p50_ms", s.p50_ms},   {"p90_ms", s.p90_ms},         {"p99_ms", s.p99_ms},
        {"mean_ms", s.mean_ms}, {"trimmed_mean_ms", s.trimmed_mean_ms}, {"min_ms", s.min_ms},
        {"max_ms", s.max_ms},   {"stddev_ms", s.stddev_ms}};
    const Json& expected = c.at("expected");
    bool case_ok = true;
    for (const auto& [key, value] : got) {
      if (!expected.has(key)) continue;
      double want = expected.at(key).as_number();
      ++checks;
      if (std::fabs(value - want) > tol * std::max(std::fabs(want), 1e-300) && value != want) {
        std::printf("FAIL %s %s: got %.17g, expected %.17g\n", c.at("name").as_string().c_str(), key, value, want);
        case_ok = false;
        ++failures;
      }
    }
    if (case_ok) std::printf("ok   %s\n", c.at("name").as_string().c_str());
  }
  std::printf("%d of %d checks failed\n", failures, checks);
  return failures ? 1 : 0;
}

// ---- report --------------------------------------------------------------

std::string basename_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Tokens of <model>_<backend>_<quant>.pte, the project's artifact naming.
std::string token_from_name(const std::string& name, const std::vector<std::string>& known) {
  std::string stem = name.substr(0, name.find_last_of('.'));
  std::string best;
  size_t start = 0;
  while (start <= stem.size()) {
    size_t end = stem.find('_', start);
    std::string tok = stem.substr(start, end == std::string::npos ? std::string::npos : end - start);
    for (const auto& k : known) {
      if (tok == k) best = k;
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return best;
}

Json make_report(const Cli& cli, const dotcom::FileFacts& facts, const dotcom::RunResult* r,
                 const std::string& error) {
  const std::string name = basename_of(cli.run.model_path);
  std::string backend = cli.backend;
  if (backend.empty()) backend = token_from_name(name, {"xnnpack", "coreml", "vulkan", "qnn", "portable", "mps"});
  if (backend.empty() && r) backend = r->backend_hint;
  if (backend.empty()) backend = "unknown";
  std::string quant = cli.quantization;
  if (quant.empty()) quant = token_from_name(name, {"fp32", "fp16", "q8"});
  if (quant.empty()) quant = "unknown";

  Json report = Json::object();
  report.set("schema", "latency-report");
  report.set("schema_version", 1);

  Json artifact = Json::object();
  artifact.set("name", name);
  artifact.set("path", cli.run.model_path);
  artifact.set("backend", backend);
  artifact.set("quantization", quant);
  artifact.set("sha256", facts.sha256.empty() ? Json() : Json(facts.sha256));
  artifact.set("size_bytes", facts.size_bytes >= 0 ? Json(static_cast<long long>(facts.size_bytes)) : Json());
  artifact.set("model", cli.model_name.empty() ? Json() : Json(cli.model_name));
  artifact.set("task", Json());
  artifact.set("input_shape", r && !r->input_shape.empty() ? Json::array_of(r->input_shape) : Json());
  artifact.set("params", Json());
  artifact.set("macs", Json());
  report.set("artifact", artifact);

  report.set("device", dotcom::probe_device(cli.run.threads));

  Json runtime = Json::object();
  runtime.set("runner", "native");
  runtime.set("executorch_version", std::strlen(DOTCOM_EXECUTORCH_VERSION) ? Json(DOTCOM_EXECUTORCH_VERSION) : Json());
  runtime.set("version", Json());
  runtime.set("compute_unit", Json());
  report.set("runtime", runtime);

  std::string kind = r ? r->input_kind : cli.run.input;
  if (kind.empty()) kind = "random";
  Json protocol = Json::object();
  protocol.set("warmup", cli.run.warmup);
  protocol.set("iterations", cli.run.iters);
  protocol.set("repeats", cli.run.repeats);
  protocol.set("input", kind);
  protocol.set("cooldown_s", Json());
  protocol.set("clock", "steady_clock");
  report.set("protocol", protocol);

  if (r) {
    dotcom::LatencyStats s = dotcom::summarize(r->latencies_ms);
    Json results = Json::object();
    results.set("load_ms", r->load_ms);
    results.set("first_inference_ms", r->first_inference_ms);
    results.set("latencies_ms", Json::array_of(r->latencies_ms));
    results.set("p50_ms", s.p50_ms);
    results.set("p90_ms", s.p90_ms);
    results.set("p99_ms", s.p99_ms);
    results.set("mean_ms", s.mean_ms);
    results.set("trimmed_mean_ms", s.trimmed_mean_ms);
    results.set("min_ms", s.min_ms);
    results.set("max_ms", s.max_ms);
    results.set("stddev_ms", s.stddev_ms);
    results.set("peak_memory_bytes", r->peak_memory_bytes >= 0 ? Json(static_cast<long long>(r->peak_memory_bytes)) : Json());
    results.set("memory_scope", "process");
    if (r->memory_before_load_bytes >= 0)
      results.set("memory_before_load_bytes", Json(static_cast<long long>(r->memory_before_load_bytes)));
    results.set("outputs_verified", r->outputs_verified ? Json(*r->outputs_verified) : Json());
    report.set("results", results);
  } else {
    report.set("results", Json());
  }
  report.set("delegation", Json());
  report.set("status", r ? "ok" : "error");
  report.set("error", r ? Json() : Json(error));
  report.set("created_at", dotcom::utc_now_iso8601());
  report.set("source", Json());
  return report;
}

// ---- crash safety net ----------------------------------------------------

// Rendered before loading: the handler may only call async-signal-safe functions.
std::string g_crash_head, g_crash_tail, g_crash_out, g_crash_tmp;

void write_all(int fd, const char* s, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}
void write_str(int fd, const char* s) { write_all(fd, s, std::strlen(s)); }

extern "C" void on_fatal_signal(int sig) {
  const char* name = sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : sig == SIGFPE ? "SIGFPE"
                     : sig == SIGILL ? "SIGILL" : sig == SIGABRT ? "SIGABRT" : "fatal signal";
  const char* phase = dotcom::g_phase;
  write_str(2, "dotcom_runner: error: the runtime crashed (");
  write_str(2, name);
  write_str(2, ") while ");
  write_str(2, phase);
  write_str(2, " the program; the file is probably corrupt\n");
  if (!g_crash_out.empty()) {
    int fd = ::open(g_crash_tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      write_all(fd, g_crash_head.data(), g_crash_head.size());
      write_str(fd, name);
      write_str(fd, ") while ");
      write_str(fd, phase);
      write_all(fd, g_crash_tail.data(), g_crash_tail.size());
      ::close(fd);
      ::rename(g_crash_tmp.c_str(), g_crash_out.c_str());
    }
  }
  ::_exit(3);
}

void arm_crash_report(const Cli& cli, const dotcom::FileFacts& facts) {
  if (!cli.out.empty()) {
    const std::string marker = "@@CRASH@@";
    std::string text = make_report(cli, facts, nullptr, marker).dump();
    size_t at = text.find(marker);
    g_crash_head = text.substr(0, at) + "the runtime crashed (";
    g_crash_tail = " the program; the file is probably corrupt" + text.substr(at + marker.size());
    g_crash_out = cli.out;
    g_crash_tmp = cli.out + ".tmp";
  }
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) std::signal(sig, on_fatal_signal);
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli = parse_args(argc, argv);
  if (!cli.selftest_stats.empty()) return selftest_stats(cli.selftest_stats);

  dotcom::init_runtime(cli.run.verbose);
  dotcom::FileFacts facts = dotcom::file_facts(cli.run.model_path);
  arm_crash_report(cli, facts);

  std::string error;
  dotcom::RunResult result;
  bool ok = false;
  try {
    result = dotcom::run_benchmark(cli.run);
    ok = true;
  } catch (const dotcom::RunnerError& e) {
    error = e.what();
  } catch (const std::exception& e) {
    error = std::string("unexpected failure: ") + e.what();
  }
  // One line that names the file, then the reason (cannot-open already names it).
  if (!ok && error.find(cli.run.model_path) == std::string::npos) error = cli.run.model_path + ": " + error;
  Json report = make_report(cli, facts, ok ? &result : nullptr, error);
  if (!ok) std::fprintf(stderr, "dotcom_runner: error: %s\n", error.c_str());

  if (cli.out.empty()) {
    std::fputs(report.dump().c_str(), stdout);
  } else {
    const std::string text = report.dump();
    try {
      dotcom::write_file_atomically(cli.out, "report ", text.data(), text.size());
    } catch (const dotcom::RunnerError& e) {
      std::fprintf(stderr, "dotcom_runner: error: %s\n", e.what());
      return 1;
    }
  }
  if (!ok) return 1;
  if (result.outputs_verified && !*result.outputs_verified) return 4;
  return 0;
}
