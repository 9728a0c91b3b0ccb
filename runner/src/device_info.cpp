#include "device_info.h"

#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#if defined(__ANDROID__)
#include <sys/system_properties.h>
#endif

namespace dotcom {
namespace {

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  size_t b = s.find_last_not_of(" \t\r\n");
  return s.substr(a, b - a + 1);
}

bool read_first_line(const std::string& path, std::string* out) {
  std::ifstream f(path);
  if (!f) return false;
  std::string line;
  if (!std::getline(f, line)) return false;
  *out = trim(line);
  return !out->empty();
}

// First value of any of `keys` in /proc/cpuinfo ("model name" on x86,
// "Hardware" or "CPU part" on many ARM kernels).
std::string cpuinfo_value(const std::vector<std::string>& keys) {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  std::vector<std::string> found(keys.size());
  while (std::getline(f, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = trim(line.substr(0, colon));
    for (size_t i = 0; i < keys.size(); ++i) {
      if (key == keys[i] && found[i].empty()) found[i] = trim(line.substr(colon + 1));
    }
  }
  for (const auto& v : found) {
    if (!v.empty()) return v;
  }
  return "";
}

#if defined(__ANDROID__)
std::string android_property(const char* name) {
  char value[PROP_VALUE_MAX] = {0};
  __system_property_get(name, value);
  return trim(value);
}
#endif

}  // namespace

Json probe_device(int threads) {
  Json d = Json::object();
  struct utsname u {};
  const bool have_uname = uname(&u) == 0;
#if defined(__ANDROID__)
  d.set("platform", "android");
  std::string release = android_property("ro.build.version.release");
  d.set("os", "Android " + release + (have_uname ? std::string(" (Linux ") + u.release + ")" : ""));
  std::string maker = android_property("ro.product.manufacturer");
  std::string model = android_property("ro.product.model");
  d.set("model", model.empty() ? Json() : Json(trim(maker + " " + model)));
#elif defined(__APPLE__)
  d.set("platform", "macos");
  d.set("os", have_uname ? std::string(u.sysname) + " " + u.release : std::string("Darwin"));
  d.set("model", have_uname ? Json(u.machine) : Json());
#else
  d.set("platform", "linux");
  d.set("os", have_uname ? std::string(u.sysname) + " " + u.release : std::string("Linux"));
  d.set("model", have_uname ? Json(u.machine) : Json());
#endif

  std::string cpu = cpuinfo_value({"model name", "Hardware", "Processor", "CPU part"});
#if defined(__ANDROID__)
  std::string soc = android_property("ro.soc.model");
  if (!soc.empty()) cpu = soc;
#endif
  d.set("cpu", cpu.empty() ? Json() : Json(cpu));

  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  d.set("cores", cores > 0 ? Json(cores) : Json());
  d.set("threads", threads);

  std::string governor;
  d.set("governor", read_first_line("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", &governor)
                        ? Json(governor)
                        : Json());
  Json freqs = Json::array();
  bool any_freq = false;
  for (long c = 0; c < (cores > 0 ? cores : 0); ++c) {
    std::string v;
    std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(c) + "/cpufreq/";
    if (read_first_line(base + "scaling_cur_freq", &v) || read_first_line(base + "cpuinfo_max_freq", &v)) {
      freqs.push(Json(std::atoll(v.c_str())));
      any_freq = true;
    }
  }
  d.set("cpu_freq_khz", any_freq ? freqs : Json());
  d.set("thermal_state", Json());

  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  d.set("memory_bytes", pages > 0 && page_size > 0 ? Json(static_cast<long long>(pages) * page_size) : Json());
  return d;
}

int64_t current_rss_bytes() {
  // Linux only (VmRSS); elsewhere unknown. Taken just before loading, it is the
  // process's share before the program exists: peak minus this is the model's.
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream is(line.substr(6));
      long long kb = 0;
      if (is >> kb) return kb * 1024;
    }
  }
  return -1;
}

int64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream is(line.substr(6));
      long long kb = 0;
      if (is >> kb) return kb * 1024;
    }
  }
  struct rusage ru {};
  if (getrusage(RUSAGE_SELF, &ru) == 0) {
#if defined(__APPLE__)
    return ru.ru_maxrss;  // bytes on Darwin
#else
    return static_cast<int64_t>(ru.ru_maxrss) * 1024;  // KiB on Linux
#endif
  }
  return -1;
}

std::string utc_now_iso8601() {
  std::time_t t = std::time(nullptr);
  std::tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace dotcom
