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

RunResult run_benchmark(const RunOptions& opts) {
  RunResult result;
  g_phase = "loading";
  result.memory_before_load_bytes = current_rss_bytes();
  const auto t_load = Clock::now();

  size_t file_size = 0;
  AlignedBuffer file = read_file(opts.model_path, &file_size);
  if (file_size < 8) {
    throw RunnerError("not an ExecuTorch program (" + std::to_string(file_size) + " bytes)");
  }

  // A .bpte wraps the program; recognised by its flatbuffer identifier, not its name.
  const uint8_t* program_data = file.get();
  size_t program_size = file_size;
  std::unique_ptr<BundledProgram> bundled;
  if (is_bundled_program(file.get(), file_size)) {
    try {
      bundled = std::make_unique<BundledProgram>(parse_bundled_program(file.get(), file_size));
    } catch (const BundledProgramError& e) {
      throw RunnerError(e.what());
    }
    program_data = bundled->program;
    program_size = bundled->program_size;
  } else if (std::memcmp(file.get() + 4, "ET", 2) != 0) {
    throw RunnerError("not an ExecuTorch program (no ET file identifier; corrupt or not a .pte)");
  }
  if (et::Program::check_header(program_data, program_size) == et::Program::HeaderStatus::ShortData) {
    throw RunnerError("truncated program (" + std::to_string(program_size) + " bytes, shorter than its header)");
  }

  BufferDataLoader loader(program_data, program_size);
  // Full flatbuffer verification: slower to load, but a corrupt file becomes an
  // error instead of a wild read. Load time is reported, so this is visible.
  auto program = et::Program::load(&loader, et::Program::Verification::InternalConsistency);
  if (!program.ok()) fail("truncated or corrupt program, cannot load it", program.error());

  auto meta_r = program->method_meta(opts.method.c_str());
  if (!meta_r.ok()) fail("program has no method '" + opts.method + "'", meta_r.error());
  et::MethodMeta meta = *meta_r;
  result.backend_hint = meta.uses_backend("XnnpackBackend") ? "xnnpack"
                        : meta.num_backends() == 0          ? "portable"
                                                            : "";

  // XNNPACK takes its thread pool when the method is initialised, so the size
  // must be set before load_method (the same rule as the Python bindings).
  if (opts.threads > 0) {
    auto* pool = ::executorch::extension::threadpool::get_threadpool();
    if (pool == nullptr || !pool->_unsafe_reset_threadpool(static_cast<uint32_t>(opts.threads))) {
      throw RunnerError("cannot set the thread pool to " + std::to_string(opts.threads) + " threads");
    }
  }

  // Memory-planned buffers, sized from the program.
  std::vector<std::vector<uint8_t>> planned;
  std::vector<et::Span<uint8_t>> planned_spans;
  for (size_t i = 0; i < meta.num_memory_planned_buffers(); ++i) {
    auto size = meta.memory_planned_buffer_size(i);
    if (!size.ok()) fail("bad memory plan", size.error());
    planned.emplace_back(static_cast<size_t>(*size));
  }
  for (auto& b : planned) planned_spans.emplace_back(b.data(), b.size());
  et::HierarchicalAllocator planned_memory({planned_spans.data(), planned_spans.size()});
  MallocMemoryAllocator method_allocator;
  MallocMemoryAllocator temp_allocator;
  et::MemoryManager memory_manager(&method_allocator, &planned_memory, &temp_allocator);

  // With --etdump the profiler records every run (its cost is in the latencies).
#ifdef DOTCOM_WITH_ETDUMP
  std::unique_ptr<::executorch::etdump::ETDumpGen> etdump;
  if (!opts.etdump.empty()) etdump = std::make_unique<::executorch::etdump::ETDumpGen>();
  auto method = program->load_method(opts.method.c_str(), &memory_manager, etdump.get());
#else
  if (!opts.etdump.empty()) throw RunnerError("--etdump: this runner was built without ExecuTorch's etdump library");
  auto method = program->load_method(opts.method.c_str(), &memory_manager);
#endif
  if (!method.ok()) fail("cannot load method '" + opts.method + "'", method.error());
  result.load_ms = ms_since(t_load);

  // ---- inputs ----
  std::string kind = opts.input;
  if (kind.empty()) kind = bundled ? "bundled" : "random";
  if (kind == "bundled" && !bundled) throw RunnerError("--input bundled needs a .bpte file");
  const BundledTestCase* test_case = nullptr;
  if (bundled) {
    const BundledTestSuite* suite = bundled->suite(opts.method);
    if (suite && !suite->test_cases.empty()) test_case = &suite->test_cases.front();
    if (kind == "bundled" && !test_case) {
      throw RunnerError("bundled program has no test case for method '" + opts.method + "'");
    }
  }
  std::vector<uint8_t> file_input;
  size_t file_offset = 0;
  if (kind == "file") {
    std::ifstream f(opts.input_file, std::ios::binary);
    if (!f) throw RunnerError("cannot open input file '" + opts.input_file + "'");
    file_input.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  std::mt19937_64 rng(opts.seed);
  std::vector<std::unique_ptr<InputTensor>> inputs;
  const size_t n_inputs = method->inputs_size();
  for (size_t i = 0; i < n_inputs; ++i) {
    auto tag = meta.input_tag(i);
    if (!tag.ok()) fail("bad input " + std::to_string(i), tag.error());
    if (*tag != et::Tag::Tensor) {
      if (test_case && i < test_case->inputs.size() && kind == "bundled") {
        const BundledValue& v = test_case->inputs[i];
        et::EValue ev;
        if (v.kind == BundledValue::Kind::Int) ev = et::EValue(v.int_val);
        else if (v.kind == BundledValue::Kind::Bool) ev = et::EValue(v.bool_val);
        else if (v.kind == BundledValue::Kind::Double) ev = et::EValue(v.double_val);
        et::Error err = method->set_input(ev, i);
        if (err != et::Error::Ok) fail("cannot set input " + std::to_string(i), err);
        continue;
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
    if (kind == "random") {
      fill_random(t->data, info->scalar_type(), rng);
    } else if (kind == "file") {
      if (file_offset + t->data.size() > file_input.size()) {
        throw RunnerError("input file '" + opts.input_file + "' has " + std::to_string(file_input.size()) +
                          " bytes, fewer than the program's inputs need (input " + std::to_string(i) + " " +
                          shape_str(t->sizes) + " is " + std::to_string(t->data.size()) + " bytes)");
      }
      std::memcpy(t->data.data(), file_input.data() + file_offset, t->data.size());
      file_offset += t->data.size();
    } else if (kind == "bundled") {
      if (i >= test_case->inputs.size() || test_case->inputs[i].kind != BundledValue::Kind::Tensor) {
        throw RunnerError("bundled test case does not provide tensor input " + std::to_string(i));
      }
      const BundledTensor& bt = test_case->inputs[i].tensor;
      if (bt.nbytes != t->data.size()) {
        throw RunnerError("bundled input " + std::to_string(i) + " has " + std::to_string(bt.nbytes) +
                          " bytes, the program expects " + std::to_string(t->data.size()));
      }
      std::memcpy(t->data.data(), bt.data, bt.nbytes);
    } else if (kind != "zeros") {
      throw RunnerError("unknown input kind '" + kind + "' (random, zeros, file, bundled)");
    }
    t->impl = std::make_unique<TensorImpl>(info->scalar_type(), static_cast<ssize_t>(t->sizes.size()),
                                           t->sizes.data(), t->data.data(), t->dim_order.data(),
                                           t->strides.data());
    t->index = i;
    et::Error err = method->set_input(et::EValue(Tensor(t->impl.get())), i);
    if (err != et::Error::Ok) fail("cannot set input " + std::to_string(i) + " " + shape_str(t->sizes), err);
    inputs.push_back(std::move(t));
  }
  if (kind == "file" && file_offset != file_input.size()) {
    throw RunnerError("input file '" + opts.input_file + "' has " + std::to_string(file_input.size()) +
                      " bytes, the program's inputs take " + std::to_string(file_offset));
  }
  result.input_kind = kind;

  // ---- timing ----
  // Inputs are set before every run, as the Python runner's execute([x]) does:
  // with memory-planned inputs set_input copies into the plan, and the planner
  // may reuse an input's bytes for activations once the input is consumed.
  g_phase = "running";
  auto run_once = [&]() {
    for (const auto& t : inputs) {
      et::Error err = method->set_input(et::EValue(Tensor(t->impl.get())), t->index);
      if (err != et::Error::Ok) fail("cannot set input " + std::to_string(t->index), err);
    }
    et::Error err = method->execute();
    if (err != et::Error::Ok) fail("inference failed", err);
  };
  auto t_first = Clock::now();
  run_once();
  result.first_inference_ms = ms_since(t_first);
  // The first inference is the first warm-up run (as in the Python runner), so
  // every runner executes the same number of untimed runs.
  for (int i = 1; i < opts.warmup; ++i) run_once();
  result.latencies_ms.reserve(static_cast<size_t>(opts.iters) * opts.repeats);
  for (int r = 0; r < opts.repeats; ++r) {
    for (int i = 0; i < opts.iters; ++i) {
      auto t0 = Clock::now();
      run_once();
      result.latencies_ms.push_back(ms_since(t0));
    }
  }
  result.peak_memory_bytes = peak_rss_bytes();
#ifdef DOTCOM_WITH_ETDUMP
  if (etdump) write_etdump(*etdump, opts.etdump);
#endif

  // ---- outputs ----
  g_phase = "checking outputs";
  const size_t n_outputs = method->outputs_size();
  if (!opts.dump_outputs.empty()) {
    write_atomically(opts.dump_outputs, "", [&](std::ofstream& out) {
      for (size_t i = 0; i < n_outputs; ++i) {
        const et::EValue& v = method->get_output(i);
        if (!v.isTensor()) continue;
        const Tensor& t = v.toTensor();
        out.write(static_cast<const char*>(t.const_data_ptr()), static_cast<std::streamsize>(t.nbytes()));
      }
    });
  }
  if (opts.verify) {
    if (!bundled) {
      std::fprintf(stderr, "dotcom_runner: note: --verify needs a .bpte with expected outputs; not verified\n");
    } else if (!test_case || kind != "bundled") {
      std::fprintf(stderr, "dotcom_runner: note: outputs are verified only with the bundled input; not verified\n");
    } else {
      bool all_ok = test_case->expected_outputs.size() <= n_outputs;
      std::string why = all_ok ? "" : "fewer outputs than expected";
      for (size_t i = 0; all_ok && i < test_case->expected_outputs.size(); ++i) {
        const BundledValue& want = test_case->expected_outputs[i];
        const et::EValue& got = method->get_output(i);
        if (want.kind != BundledValue::Kind::Tensor || !got.isTensor()) continue;
        if (!close_enough(got.toTensor(), want.tensor, opts.rtol, opts.atol, &why)) {
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
  g_phase = "done";
  return result;
}

}  // namespace dotcom
