#include "runner.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <executorch/extension/data_loader/buffer_data_loader.h>
#include <executorch/extension/memory_allocator/malloc_memory_allocator.h>
#include <executorch/runtime/core/evalue.h>
#include <executorch/runtime/core/exec_aten/util/scalar_type_util.h>
#include <executorch/runtime/executor/method.h>
#include <executorch/runtime/executor/program.h>
#include <executorch/runtime/platform/platform.h>
#include <executorch/runtime/platform/runtime.h>

#ifdef DOTCOM_WITH_ETDUMP
#include <executorch/devtools/etdump/etdump_flatcc.h>
#endif

#include "bundled_program.h"
#include "device_info.h"
#include "sha256.h"
#include "threadpool_api.h"

namespace dotcom {

const char* volatile g_phase = "starting";

namespace et = ::executorch::runtime;
using ::executorch::aten::ScalarType;
using ::executorch::aten::Tensor;
using ::executorch::aten::TensorImpl;
using ::executorch::extension::BufferDataLoader;
using ::executorch::extension::MallocMemoryAllocator;

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// ---- runtime log capture -------------------------------------------------

bool g_verbose = false;
std::string g_last_runtime_error;

void log_hook(et_timestamp_t, et_pal_log_level_t level, const char* filename, const char*,
              size_t line, const char* message, size_t length) {
  std::string msg(message, length);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r')) msg.pop_back();
  if (level == kError || level == kFatal) g_last_runtime_error = msg;
  if (g_verbose) {
    const char* base = std::strrchr(filename, '/');
    std::fprintf(stderr, "%c executorch:%s:%zu] %s\n", static_cast<char>(level),
                 base ? base + 1 : filename, line, msg.c_str());
  }
}

[[noreturn]] void fail(const std::string& what, et::Error err) {
  std::string msg = what + ": " + et::to_string(err);
  if (!g_last_runtime_error.empty()) msg += " (" + g_last_runtime_error + ")";
  throw RunnerError(msg);
}

// ---- file loading --------------------------------------------------------

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<uint8_t, FreeDeleter>;

// Reads the whole file into a 64-byte aligned buffer: the program's segments
// (and a bundled program's embedded .pte) carry alignment requirements.
AlignedBuffer read_file(const std::string& path, size_t* size) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw RunnerError("cannot open '" + path + "' (no such file or not readable)");
  std::streamsize n = f.tellg();
  if (n < 0) throw RunnerError("cannot read '" + path + "'");
  f.seekg(0);
  size_t cap = (static_cast<size_t>(n) + 63) / 64 * 64 + 64;
  AlignedBuffer buf(static_cast<uint8_t*>(std::aligned_alloc(64, cap)));
  if (!buf) throw RunnerError("out of memory reading '" + path + "'");
  if (n > 0 && !f.read(reinterpret_cast<char*>(buf.get()), n)) {
    throw RunnerError("cannot read '" + path + "'");
  }
  *size = static_cast<size_t>(n);
  return buf;
}

// ---- inputs --------------------------------------------------------------

// Owns the storage a TensorImpl points at.
struct InputTensor {
  std::vector<int32_t> sizes;
  std::vector<uint8_t> dim_order;
  std::vector<int32_t> strides;
  std::vector<uint8_t> data;
  std::unique_ptr<TensorImpl> impl;
  size_t index = 0;  // method input index
};

void make_strides(InputTensor& t) {
  const size_t dim = t.sizes.size();
  t.strides.assign(dim, 1);
  if (t.dim_order.size() != dim) {
    t.dim_order.resize(dim);
    for (size_t i = 0; i < dim; ++i) t.dim_order[i] = static_cast<uint8_t>(i);
  }
  int32_t stride = 1;
  for (size_t k = dim; k-- > 0;) {
    size_t d = t.dim_order[k];
    if (d >= dim) throw RunnerError("invalid dim order in program");
    t.strides[d] = stride;
    stride *= t.sizes[d];
  }
}

void fill_random(std::vector<uint8_t>& data, ScalarType type, std::mt19937_64& rng) {
  if (type == ScalarType::Float) {
    std::normal_distribution<float> dist(0.0f, 1.0f);
    float* p = reinterpret_cast<float*>(data.data());
    for (size_t i = 0; i < data.size() / sizeof(float); ++i) p[i] = dist(rng);
  } else if (type == ScalarType::Double) {
    std::normal_distribution<double> dist(0.0, 1.0);
    double* p = reinterpret_cast<double*>(data.data());
    for (size_t i = 0; i < data.size() / sizeof(double); ++i) p[i] = dist(rng);
  } else {
    // Integer/bool/half inputs: zeros are always valid values (indices, masks).
    std::fill(data.begin(), data.end(), 0);
  }
}

std::string shape_str(const std::vector<int32_t>& sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + "]";
}

// ---- output comparison ---------------------------------------------------

bool close_enough(const Tensor& got, const BundledTensor& want, double rtol, double atol,
                  std::string* why) {
  if (static_cast<int8_t>(got.scalar_type()) != want.scalar_type) {
    *why = "dtype differs";
    return false;
  }
  if (got.nbytes() != want.nbytes) {
    *why = "size differs (" + std::to_string(got.nbytes()) + " vs " + std::to_string(want.nbytes) + " bytes)";
    return false;
  }
  auto compare = [&](auto tag) {
    using T = decltype(tag);
    const T* a = got.const_data_ptr<T>();
    std::vector<T> b(want.nbytes / sizeof(T));
    std::memcpy(b.data(), want.data, want.nbytes);
    double worst = 0.0;
    bool ok = true;
    for (size_t i = 0; i < b.size(); ++i) {
      double x = static_cast<double>(a[i]), y = static_cast<double>(b[i]);
      double diff = std::fabs(x - y);
      if (!(diff <= atol + rtol * std::fabs(y))) ok = false;
      worst = std::max(worst, diff);
    }
    if (!ok) *why = "max abs diff " + std::to_string(worst);
    return ok;
  };
  if (got.scalar_type() == ScalarType::Float) return compare(float{});
  if (got.scalar_type() == ScalarType::Double) return compare(double{});
  if (std::memcmp(got.const_data_ptr(), want.data, want.nbytes) != 0) {
    *why = "bytes differ";
    return false;
  }
  return true;
}

}  // namespace

void init_runtime(bool verbose) {
  g_verbose = verbose;
  et::register_pal(et::PalImpl::create(log_hook, __FILE__));
  et::runtime_init();
}

FileFacts file_facts(const std::string& path) {
  FileFacts facts;
  try {
    size_t n = 0;
    AlignedBuffer buf = read_file(path, &n);
    facts.size_bytes = static_cast<int64_t>(n);
    facts.sha256 = sha256_hex(buf.get(), n);
  } catch (const RunnerError&) {
  }
  return facts;
}

namespace {

// Writes through `<path>.tmp` and a rename, so a reader never sees half a file; `fill`
// writes the bytes. A failure removes the temporary and throws "cannot write <what>'<path>'".
template <typename Fill>
void write_atomically(const std::string& path, const std::string& what, Fill fill) {
  std::string tmp = path + ".tmp";
  bool ok = false;
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (out) {
      fill(out);
      ok = static_cast<bool>(out.flush());
    }
  }
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw RunnerError("cannot write " + what + "'" + path + "'");
  }
}

#ifdef DOTCOM_WITH_ETDUMP
// The profile of every run.
void write_etdump(::executorch::etdump::ETDumpGen& gen, const std::string& path) {
  ::executorch::etdump::ETDumpResult dump = gen.get_etdump_data();
  // Allocated by the flatcc builder (ETDumpGen without a buffer): freed on every path.
  std::unique_ptr<void, decltype(&std::free)> owned(dump.buf, &std::free);
  if (dump.buf == nullptr || dump.size == 0) throw RunnerError("the profiler recorded nothing for '" + path + "'");
  write_file_atomically(path, "ETDump ", dump.buf, dump.size);
}
#endif

}  // namespace

void write_file_atomically(const std::string& path, const std::string& what, const void* data, size_t size) {
  write_atomically(path, what, [&](std::ofstream& out) {
    out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  });
}

namespace {

// One program, loaded, with its method and inputs set up: everything a call needs. The
// loader, allocators and input tensors are pointed at by the runtime, so a Session never
// moves (held by unique_ptr).
class Session {
 public:
  Session(const RunOptions& opts, RunResult& result) : opts_(opts) { load(result); }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Inputs are set before every run, as the Python runner's execute([x]) does: with
  // memory-planned inputs set_input copies into the plan, and the planner may reuse an
  // input's bytes for activations once the input is consumed.
  void run_once() {
    for (const auto& t : inputs_) {
      et::Error err = method_->set_input(et::EValue(Tensor(t->impl.get())), t->index);
      if (err != et::Error::Ok) fail("cannot set input " + std::to_string(t->index), err);
    }
    et::Error err = method_->execute();
    if (err != et::Error::Ok) fail("inference failed", err);
  }

  // After the timed runs: the ETDump, the output dump and the bundled-output check.
  void finish(RunResult& result);

 private:
  void load(RunResult& result);
  void set_inputs(const et::MethodMeta& meta, RunResult& result);

  const RunOptions& opts_;
  AlignedBuffer file_;
  std::unique_ptr<BundledProgram> bundled_;
  std::unique_ptr<BufferDataLoader> loader_;
  std::unique_ptr<et::Program> program_;
  std::vector<std::vector<uint8_t>> planned_;
  std::vector<et::Span<uint8_t>> planned_spans_;
  std::unique_ptr<et::HierarchicalAllocator> planned_memory_;
  MallocMemoryAllocator method_allocator_, temp_allocator_;
  std::unique_ptr<et::MemoryManager> memory_manager_;
#ifdef DOTCOM_WITH_ETDUMP
  std::unique_ptr<::executorch::etdump::ETDumpGen> etdump_;
#endif
  std::unique_ptr<et::Method> method_;
  std::string kind_;
  const BundledTestCase* test_case_ = nullptr;
  std::vector<std::unique_ptr<InputTensor>> inputs_;
};

void Session::load(RunResult& result) {
  g_phase = "loading";
  result.memory_before_load_bytes = current_rss_bytes();
  const auto t_load = Clock::now();

  size_t file_size = 0;
  file_ = read_file(opts_.model_path, &file_size);
  if (file_size < 8) {
    throw RunnerError("not an ExecuTorch program (" + std::to_string(file_size) + " bytes)");
  }

  // A .bpte wraps the program; recognised by its flatbuffer identifier, not its name.
  const uint8_t* program_data = file_.get();
  size_t program_size = file_size;
  if (is_bundled_program(file_.get(), file_size)) {
    try {
      bundled_ = std::make_unique<BundledProgram>(parse_bundled_program(file_.get(), file_size));
    } catch (const BundledProgramError& e) {
      throw RunnerError(e.what());
    }
    program_data = bundled_->program;
    program_size = bundled_->program_size;
  } else if (std::memcmp(file_.get() + 4, "ET", 2) != 0) {
    throw RunnerError("not an ExecuTorch program (no ET file identifier; corrupt or not a .pte)");
  }
  if (et::Program::check_header(program_data, program_size) == et::Program::HeaderStatus::ShortData) {
    throw RunnerError("truncated program (" + std::to_string(program_size) + " bytes, shorter than its header)");
  }

  loader_ = std::make_unique<BufferDataLoader>(program_data, program_size);
  // Full flatbuffer verification: slower to load, but a corrupt file becomes an
  // error instead of a wild read. Load time is reported, so this is visible.
  auto program = et::Program::load(loader_.get(), et::Program::Verification::InternalConsistency);
  if (!program.ok()) fail("truncated or corrupt program, cannot load it", program.error());
  program_ = std::make_unique<et::Program>(std::move(*program));

  auto meta_r = program_->method_meta(opts_.method.c_str());
  if (!meta_r.ok()) fail("program has no method '" + opts_.method + "'", meta_r.error());
  et::MethodMeta meta = *meta_r;
  result.backend_hint = meta.uses_backend("XnnpackBackend") ? "xnnpack"
                        : meta.num_backends() == 0          ? "portable"
                                                            : "";

  // Memory-planned buffers, sized from the program.
  for (size_t i = 0; i < meta.num_memory_planned_buffers(); ++i) {
    auto size = meta.memory_planned_buffer_size(i);
    if (!size.ok()) fail("bad memory plan", size.error());
    planned_.emplace_back(static_cast<size_t>(*size));
  }
  for (auto& b : planned_) planned_spans_.emplace_back(b.data(), b.size());
  planned_memory_ = std::make_unique<et::HierarchicalAllocator>(
      et::Span<et::Span<uint8_t>>(planned_spans_.data(), planned_spans_.size()));
  memory_manager_ = std::make_unique<et::MemoryManager>(&method_allocator_, planned_memory_.get(), &temp_allocator_);

  // With --etdump the profiler records every run (its cost is in the latencies).
#ifdef DOTCOM_WITH_ETDUMP
  if (!opts_.etdump.empty()) etdump_ = std::make_unique<::executorch::etdump::ETDumpGen>();
  auto method = program_->load_method(opts_.method.c_str(), memory_manager_.get(), etdump_.get());
#else
  if (!opts_.etdump.empty()) throw RunnerError("--etdump: this runner was built without ExecuTorch's etdump library");
  auto method = program_->load_method(opts_.method.c_str(), memory_manager_.get());
#endif
  if (!method.ok()) fail("cannot load method '" + opts_.method + "'", method.error());
  method_ = std::make_unique<et::Method>(std::move(*method));
  result.load_ms = ms_since(t_load);
  set_inputs(meta, result);
}

void Session::set_inputs(const et::MethodMeta& meta, RunResult& result) {
  kind_ = opts_.input;
  if (kind_.empty()) kind_ = bundled_ ? "bundled" : "random";
  if (kind_ == "bundled" && !bundled_) throw RunnerError("--input bundled needs a .bpte file");
  if (bundled_) {
    const BundledTestSuite* suite = bundled_->suite(opts_.method);
    if (suite && !suite->test_cases.empty()) test_case_ = &suite->test_cases.front();
    if (kind_ == "bundled" && !test_case_) {
      throw RunnerError("bundled program has no test case for method '" + opts_.method + "'");
    }
  }
  std::vector<uint8_t> file_input;
  size_t file_offset = 0;
  if (kind_ == "file") {
    std::ifstream f(opts_.input_file, std::ios::binary);
    if (!f) throw RunnerError("cannot open input file '" + opts_.input_file + "'");
    file_input.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  std::mt19937_64 rng(opts_.seed);
  const size_t n_inputs = method_->inputs_size();
  for (size_t i = 0; i < n_inputs; ++i) {
    auto tag = meta.input_tag(i);
    if (!tag.ok()) fail("bad input " + std::to_string(i), tag.error());
    if (*tag != et::Tag::Tensor) {
      if (test_case_ && i < test_case_->inputs.size() && kind_ == "bundled") {
        const BundledValue& v = test_case_->inputs[i];
        et::EValue ev;
        if (v.kind == BundledValue::Kind::Int) ev = et::EValue(v.int_val);
        else if (v.kind == BundledValue::Kind::Bool) ev = et::EValue(v.bool_val);
        else if (v.kind == BundledValue::Kind::Double) ev = et::EValue(v.double_val);
        et::Error err = method_->set_input(ev, i);
        if (err != et::Error::Ok) fail("cannot set input " + std::to_string(i), err);
      }
      continue;  // non-tensor inputs keep the value baked into the program
    }
    auto info = meta.input_tensor_meta(i);
    if (!info.ok()) fail("bad input " + std::to_string(i), info.error());
    auto t = std::make_unique<InputTensor>();
    t->sizes.assign(info->sizes().begin(), info->sizes().end());
    t->dim_order.assign(info->dim_order().begin(), info->dim_order().end());
    make_strides(*t);
    t->data.assign(info->nbytes(), 0);
    if (result.input_shape.empty()) result.input_shape.assign(t->sizes.begin(), t->sizes.end());
    if (kind_ == "random") {
      fill_random(t->data, info->scalar_type(), rng);
    } else if (kind_ == "file") {
      if (file_offset + t->data.size() > file_input.size()) {
        throw RunnerError("input file '" + opts_.input_file + "' has " + std::to_string(file_input.size()) +
                          " bytes, fewer than the program's inputs need (input " + std::to_string(i) + " " +
                          shape_str(t->sizes) + " is " + std::to_string(t->data.size()) + " bytes)");
      }
      std::memcpy(t->data.data(), file_input.data() + file_offset, t->data.size());
      file_offset += t->data.size();
    } else if (kind_ == "bundled") {
      if (i >= test_case_->inputs.size() || test_case_->inputs[i].kind != BundledValue::Kind::Tensor) {
        throw RunnerError("bundled test case does not provide tensor input " + std::to_string(i));
      }
      const BundledTensor& bt = test_case_->inputs[i].tensor;
      if (bt.nbytes != t->data.size()) {
        throw RunnerError("bundled input " + std::to_string(i) + " has " + std::to_string(bt.nbytes) +
                          " bytes, the program expects " + std::to_string(t->data.size()));
      }
      std::memcpy(t->data.data(), bt.data, bt.nbytes);
    } else if (kind_ != "zeros") {
      throw RunnerError("unknown input kind '" + kind_ + "' (random, zeros, file, bundled)");
    }
    t->impl = std::make_unique<TensorImpl>(info->scalar_type(), static_cast<ssize_t>(t->sizes.size()),
                                           t->sizes.data(), t->data.data(), t->dim_order.data(),
                                           t->strides.data());
    t->index = i;
    et::Error err = method_->set_input(et::EValue(Tensor(t->impl.get())), i);
    if (err != et::Error::Ok) fail("cannot set input " + std::to_string(i) + " " + shape_str(t->sizes), err);
    inputs_.push_back(std::move(t));
  }
  if (kind_ == "file" && file_offset != file_input.size()) {
    throw RunnerError("input file '" + opts_.input_file + "' has " + std::to_string(file_input.size()) +
                      " bytes, the program's inputs take " + std::to_string(file_offset));
  }
  result.input_kind = kind_;
}

void Session::finish(RunResult& result) {
#ifdef DOTCOM_WITH_ETDUMP
  if (etdump_) write_etdump(*etdump_, opts_.etdump);
#endif
  g_phase = "checking outputs";
  const size_t n_outputs = method_->outputs_size();
  if (!opts_.dump_outputs.empty()) {
    write_atomically(opts_.dump_outputs, "", [&](std::ofstream& out) {
      for (size_t i = 0; i < n_outputs; ++i) {
        const et::EValue& v = method_->get_output(i);
        if (!v.isTensor()) continue;
        const Tensor& t = v.toTensor();
        out.write(static_cast<const char*>(t.const_data_ptr()), static_cast<std::streamsize>(t.nbytes()));
      }
    });
  }
  if (!opts_.verify) return;
  if (!bundled_) {
    std::fprintf(stderr, "dotcom_runner: note: --verify needs a .bpte with expected outputs; not verified\n");
  } else if (!test_case_ || kind_ != "bundled") {
    std::fprintf(stderr, "dotcom_runner: note: outputs are verified only with the bundled input; not verified\n");
  } else {
    bool all_ok = test_case_->expected_outputs.size() <= n_outputs;
    std::string why = all_ok ? "" : "fewer outputs than expected";
    for (size_t i = 0; all_ok && i < test_case_->expected_outputs.size(); ++i) {
      const BundledValue& want = test_case_->expected_outputs[i];
      const et::EValue& got = method_->get_output(i);
      if (want.kind != BundledValue::Kind::Tensor || !got.isTensor()) continue;
      if (!close_enough(got.toTensor(), want.tensor, opts_.rtol, opts_.atol, &why)) {
        why = "output " + std::to_string(i) + ": " + why;
        all_ok = false;
      }
    }
    result.outputs_verified = all_ok;
    if (!all_ok) {
      std::fprintf(stderr, "dotcom_runner: outputs differ from the bundled expected outputs: %s\n", why.c_str());
    }
  }
}

// Runs `step` for program `i`; a RunnerError that does not name the file gets it in front,
// so with several programs the one line says which one failed.
template <typename Step>
void for_program(const RunOptions& opts, Step step) {
  try {
    step();
  } catch (const RunnerError& e) {
    std::string msg = e.what();
    if (msg.find(opts.model_path) == std::string::npos) msg = opts.model_path + ": " + msg;
    throw RunnerError(msg);
  }
}

}  // namespace

std::vector<RunResult> run_in_turn(const std::vector<RunOptions>& opts) {
  if (opts.empty()) throw RunnerError("no program to run");
  std::vector<RunResult> results(opts.size());

  // XNNPACK takes its thread pool when a method is initialised, so the size must be
  // set before the first load_method (the same rule as the Python bindings).
  if (opts[0].threads > 0) {
    auto* pool = ::executorch::extension::threadpool::get_threadpool();
    if (pool == nullptr || !pool->_unsafe_reset_threadpool(static_cast<uint32_t>(opts[0].threads))) {
      throw RunnerError("cannot set the thread pool to " + std::to_string(opts[0].threads) + " threads");
    }
  }
  std::vector<std::unique_ptr<Session>> sessions;
  for (size_t k = 0; k < opts.size(); ++k) {
    for_program(opts[k], [&] { sessions.push_back(std::make_unique<Session>(opts[k], results[k])); });
  }

  // ---- timing: every call below calls each program once, in order ----
  g_phase = "running";
  auto each = [&](auto body) {
    for (size_t k = 0; k < sessions.size(); ++k) for_program(opts[k], [&] { body(k); });
  };
  each([&](size_t k) {
    auto t_first = Clock::now();
    sessions[k]->run_once();
    results[k].first_inference_ms = ms_since(t_first);
  });
  // The first inference is the first warm-up run (as in the Python runner), so
  // every runner executes the same number of untimed runs.
  for (int i = 1; i < opts[0].warmup; ++i) each([&](size_t k) { sessions[k]->run_once(); });
  for (auto& r : results) r.latencies_ms.reserve(static_cast<size_t>(opts[0].iters) * opts[0].repeats);
  for (int r = 0; r < opts[0].repeats; ++r) {
    for (int i = 0; i < opts[0].iters; ++i) {
      each([&](size_t k) {
        auto t0 = Clock::now();
        sessions[k]->run_once();
        results[k].latencies_ms.push_back(ms_since(t0));
      });
    }
  }
  const int64_t peak = peak_rss_bytes();
  for (size_t k = 0; k < sessions.size(); ++k) {
    results[k].peak_memory_bytes = peak;
    for_program(opts[k], [&] { sessions[k]->finish(results[k]); });
  }
  g_phase = "done";
  return results;
}

RunResult run_benchmark(const RunOptions& opts) { return std::move(run_in_turn({opts}).front()); }

}  // namespace dotcom
