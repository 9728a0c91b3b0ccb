// What the report's `device` block says about the machine: enough to tell two
// latency numbers apart (CPU, cores, governor and clocks matter more than the OS).
#pragma once

#include <cstdint>
#include "json.h"

namespace dotcom {

// Device block for the latency report; `threads` is what the runtime was told
// to use (0: runtime default).
Json probe_device(int threads);

// Peak resident set size of this process in bytes (VmHWM, else ru_maxrss), or -1.
int64_t peak_rss_bytes();
// Resident memory now (Linux VmRSS), -1 where unknown.
int64_t current_rss_bytes();

// "2026-01-31T12:34:56Z"
std::string utc_now_iso8601();

}  // namespace dotcom
