// The executorch wheel ships libexecutorch_threadpool.so but not its header
// (extension/threadpool/threadpool.h). These declarations match the exported
// symbols (non-virtual members, so no class layout is needed) and are what the
// Python bindings' _unsafe_reset_threadpool calls. An ExecuTorch built from
// source can include the real header instead (DOTCOM_HAVE_THREADPOOL_HEADER).
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(DOTCOM_HAVE_THREADPOOL_HEADER)
#include <executorch/extension/threadpool/threadpool.h>
#else
namespace executorch::extension::threadpool {
class ThreadPool {
 public:
  size_t get_thread_count() const;
  bool _unsafe_reset_threadpool(uint32_t num_threads);
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool
#endif
