// dotcom_runner: time one ExecuTorch program (.pte or .bpte), or several in turn, and
// write a latency-report v1 JSON per program (report/schemas/latency-report.v1.schema.json).
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
       dotcom_runner --model A.pte --out A.json --model B.pte --out B.json [options]
       dotcom_runner --selftest-stats report/schemas/stats_vectors.json

Times the `forward` method of an ExecuTorch program and writes a latency-report v1.

With --model given several times the programs are timed in turn: all are loaded,
then every warm-up and timed call runs each program once, so a slow spell of the
machine lands on all of them and their ratio holds. --out is then needed once per
--model, and --etdump, --dump-outputs, --backend, --quantization and --model-name
are given once per --model or not at all; they pair with the models in order. Each
report's protocol.in_turn_with names the others; its peak memory is the process's,
all programs loaded (memory_scope in_process).

  --model PATH          .pte or .bpte (BundledProgram) to run (repeatable: in turn)
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

// Options that name one program's files or facts: given once per --model (or never).
struct PerModel {
  std::vector<std::string> models, outs, etdumps, dump_outputs, backends, quantizations, model_names;
};

struct Cli {
  dotcom::RunOptions run;  // shared by every program (paths filled in per program)
  PerModel per;
  std::string selftest_stats;

  size_t count() const { return per.models.size(); }
  static const std::string& nth(const std::vector<std::string>& v, size_t k) {
    static const std::string none;
    return k < v.size() ? v[k] : none;
  }
  dotcom::RunOptions options(size_t k) const {
    dotcom::RunOptions o = run;
    o.model_path = per.models[k];
    o.etdump = nth(per.etdumps, k);
    o.dump_outputs = nth(per.dump_outputs, k);
    return o;
  }
  const std::string& out(size_t k) const { return nth(per.outs, k); }
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
    } else if (a == "--model") cli.per.models.push_back(next());
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
    else if (a == "--dump-outputs") cli.per.dump_outputs.push_back(next());
    else if (a == "--etdump") cli.per.etdumps.push_back(next());
    else if (a == "--out") cli.per.outs.push_back(next());
    else if (a == "--backend") cli.per.backends.push_back(next());
    else if (a == "--quantization") cli.per.quantizations.push_back(next());
    else if (a == "--model-name") cli.per.model_names.push_back(next());
    else if (a == "--verbose") cli.run.verbose = true;
    else if (a == "--selftest-stats") cli.selftest_stats = next();
    else usage_error("unknown option '" + a + "'");
  }
  if (!cli.selftest_stats.empty()) return cli;
  const size_t n = cli.count();
  if (n == 0) usage_error("--model is required");
  const std::pair<const char*, const std::vector<std::string>*> per[] = {
      {"--out", &cli.per.outs},           {"--etdump", &cli.per.etdumps},
      {"--dump-outputs", &cli.per.dump_outputs}, {"--backend", &cli.per.backends},
      {"--quantization", &cli.per.quantizations}, {"--model-name", &cli.per.model_names}};
  for (const auto& [flag, values] : per) {
    if (!values->empty() && values->size() != n) {
      const size_t m = values->size();
      usage_error(std::string(flag) + " is given " + (m == 1 ? "once" : std::to_string(m) + " times") + " for " +
                  std::to_string(n) + " models; give it once per --model, in the same order");
    }
  }
  if (n > 1 && cli.per.outs.size() != n) usage_error("with several --model, give --out once per --model (a report each)");
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

Json make_report(const Cli& cli, size_t k, const dotcom::FileFacts& facts, const dotcom::RunResult* r,
                 const std::string& error) {
  const std::string& path = cli.per.models[k];
  const std::string name = basename_of(path);
  std::string backend = Cli::nth(cli.per.backends, k);
  if (backend.empty()) backend = token_from_name(name, {"xnnpack", "coreml", "vulkan", "qnn", "portable", "mps"});
  if (backend.empty() && r) backend = r->backend_hint;
  if (backend.empty()) backend = "unknown";
  std::string quant = Cli::nth(cli.per.quantizations, k);
  if (quant.empty()) quant = token_from_name(name, {"fp32", "fp16", "q8"});
  if (quant.empty()) quant = "unknown";

  Json report = Json::object();
  report.set("schema", "latency-report");
  report.set("schema_version", 1);

  Json artifact = Json::object();
  artifact.set("name", name);
  artifact.set("path", path);
  artifact.set("backend", backend);
  artifact.set("quantization", quant);
  artifact.set("sha256", facts.sha256.empty() ? Json() : Json(facts.sha256));
  artifact.set("size_bytes", facts.size_bytes >= 0 ? Json(static_cast<long long>(facts.size_bytes)) : Json());
  const std::string& model_name = Cli::nth(cli.per.model_names, k);
  artifact.set("model", model_name.empty() ? Json() : Json(model_name));
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
  if (cli.count() > 1) {
    Json others = Json::array();
    for (size_t j = 0; j < cli.count(); ++j) {
      if (j != k) others.push(basename_of(cli.per.models[j]));
    }
    protocol.set("in_turn_with", others);
  }
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
    results.set("memory_scope", cli.count() > 1 ? "in_process" : "process");
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

// One error report per --out, rendered before loading: the handler may only call
// async-signal-safe functions, so it writes these bytes and the signal's name.
struct CrashReport {
  std::string head, tail, out, tmp;
};
std::vector<CrashReport> g_crash_reports;

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
  for (const CrashReport& c : g_crash_reports) {
    int fd = ::open(c.tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) continue;
    write_all(fd, c.head.data(), c.head.size());
    write_str(fd, name);
    write_str(fd, ") while ");
    write_str(fd, phase);
    write_all(fd, c.tail.data(), c.tail.size());
    ::close(fd);
    ::rename(c.tmp.c_str(), c.out.c_str());
  }
  ::_exit(3);
}

void arm_crash_report(const Cli& cli, const std::vector<dotcom::FileFacts>& facts) {
  const std::string marker = "@@CRASH@@";
  for (size_t k = 0; k < cli.count(); ++k) {
    if (cli.out(k).empty()) continue;
    std::string text = make_report(cli, k, facts[k], nullptr, marker).dump();
    size_t at = text.find(marker);
    g_crash_reports.push_back({text.substr(0, at) + "the runtime crashed (",
                               " the program; the file is probably corrupt" + text.substr(at + marker.size()),
                               cli.out(k), cli.out(k) + ".tmp"});
  }
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) std::signal(sig, on_fatal_signal);
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli = parse_args(argc, argv);
  if (!cli.selftest_stats.empty()) return selftest_stats(cli.selftest_stats);

  dotcom::init_runtime(cli.run.verbose);
  std::vector<dotcom::FileFacts> facts;
  std::vector<dotcom::RunOptions> runs;
  for (size_t k = 0; k < cli.count(); ++k) {
    facts.push_back(dotcom::file_facts(cli.per.models[k]));
    runs.push_back(cli.options(k));
  }
  arm_crash_report(cli, facts);

  std::string error;
  std::vector<dotcom::RunResult> results;
  bool ok = false;
  try {
    results = dotcom::run_in_turn(runs);
    ok = true;
  } catch (const dotcom::RunnerError& e) {
    error = e.what();
  } catch (const std::exception& e) {
    error = std::string("unexpected failure: ") + e.what();
  }
  // One line that names the file, then the reason (the runner names the program that failed).
  bool named = std::any_of(cli.per.models.begin(), cli.per.models.end(),
                           [&](const std::string& m) { return error.find(m) != std::string::npos; });
  if (!ok && !named) error = cli.per.models[0] + ": " + error;
  if (!ok) std::fprintf(stderr, "dotcom_runner: error: %s\n", error.c_str());

  // Every program gets its report; when one fails, all of them carry the error (one process).
  for (size_t k = 0; k < cli.count(); ++k) {
    const std::string text = make_report(cli, k, facts[k], ok ? &results[k] : nullptr, error).dump();
    if (cli.out(k).empty()) {
      std::fputs(text.c_str(), stdout);
      continue;
    }
    try {
      dotcom::write_file_atomically(cli.out(k), "report ", text.data(), text.size());
    } catch (const dotcom::RunnerError& e) {
      std::fprintf(stderr, "dotcom_runner: error: %s\n", e.what());
      return 1;
    }
  }
  if (!ok) return 1;
  for (const auto& r : results) {
    if (r.outputs_verified && !*r.outputs_verified) return 4;
  }
  return 0;
}
