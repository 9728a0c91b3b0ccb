// Loads one ExecuTorch program and times its `forward` method with the
// protocol every dotcom-mobile runner follows: warm-up runs (the first one timed
// on its own as the first inference), then `repeats` x `iters` timed runs on a
// steady clock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace dotcom {

struct RunOptions {
  std::string model_path;
  std::string method = "forward";
  int threads = 0;  // 0: leave the runtime's default thread pool alone
  int warmup = 10;
  int iters = 50;
  int repeats = 3;
  std::string input = "";  // random | zeros | file | bundled; "" = bundled for .bpte, else random
  std::string input_file;  // raw little-endian bytes of every tensor input, in order
  uint64_t seed = 0;
  bool verify = false;
  double rtol = 1e-5, atol = 1e-8;  // ExecuTorch's bundled-program defaults
  std::string dump_outputs;         // raw bytes of every tensor output, in order
  std::string etdump;               // write an ETDump (profiler events of every run) here
  bool verbose = false;
};

struct RunResult {
  double load_ms = 0, first_inference_ms = 0;
  std::vector<double> latencies_ms;
  int64_t peak_memory_bytes = -1;         // this process's peak RSS (memory_scope "process")
  int64_t memory_before_load_bytes = -1;  // RSS just before the program was loaded
  std::optional<bool> outputs_verified;
  std::string input_kind;  // as reported in protocol.input
  std::string backend_hint;  // "xnnpack" when the method uses XNNPACK, "portable" with no delegate
  std::vector<int64_t> input_shape;
};

// Everything that is the user's or the file's fault: reported as one line.
struct RunnerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Phase names for the crash handler ("loading", "running", ...).
extern const char* volatile g_phase;

// Installs the PAL log hook; call once before run_benchmark. With verbose=false
// runtime log lines are kept back and only the last error is quoted in a
// RunnerError, so a failure reads as one line.
void init_runtime(bool verbose);

RunResult run_benchmark(const RunOptions& opts);

// Several programs timed in turn: all are loaded first, then every warm-up and timed
// call runs each program once, in order, so a slow spell of a shared host lands on
// all of them alike and the ratios between them hold (perf/README.md). The thread
// pool size, warm-up, iteration and repeat counts are opts[0]'s; the rest of each
// RunOptions (path, inputs, ETDump, output dump) is per program. peak_memory_bytes is
// the process's, all programs included. A failure names its program's file.
std::vector<RunResult> run_in_turn(const std::vector<RunOptions>& opts);

// Artifact facts the report needs even when loading fails.
struct FileFacts {
  std::string sha256;
  int64_t size_bytes = -1;
};
FileFacts file_facts(const std::string& path);

// Writes `size` bytes to `path` through `<path>.tmp` and a rename, so a reader never sees
// half a file (reports, output dumps, ETDumps). A failure removes the temporary and throws
// RunnerError("cannot write <what>'<path>'"); `what` is "" or ends in a space.
void write_file_atomically(const std::string& path, const std::string& what, const void* data, size_t size);

}  // namespace dotcom
