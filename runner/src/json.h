// A small JSON value: enough to write the latency report and to read the
// statistics test vectors, without pulling a JSON dependency into a binary that
// also has to cross-compile for Android.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace dotcom {

class Json {
 public:
  enum class Kind { Null, Bool, Int, Number, String, Array, Object };

  Json() = default;  // null
  Json(std::nullptr_t) {}
  Json(bool b) : kind_(Kind::Bool), bool_(b) {}
  Json(int v) : kind_(Kind::Int), int_(v) {}
  Json(long v) : kind_(Kind::Int), int_(v) {}
  Json(long long v) : kind_(Kind::Int), int_(v) {}
  Json(unsigned v) : kind_(Kind::Int), int_(v) {}
  Json(unsigned long v) : kind_(Kind::Int), int_(static_cast<int64_t>(v)) {}
  Json(unsigned long long v) : kind_(Kind::Int), int_(static_cast<int64_t>(v)) {}
  Json(double v) : kind_(Kind::Number), num_(v) {}
  Json(const char* s) : kind_(Kind::String), str_(s) {}
  Json(std::string s) : kind_(Kind::String), str_(std::move(s)) {}

  static Json array() { Json j; j.kind_ = Kind::Array; return j; }
  static Json object() { Json j; j.kind_ = Kind::Object; return j; }
  template <typename T>
  static Json array_of(const std::vector<T>& xs) {
    Json j = array();
    for (const auto& x : xs) j.push(Json(x));
    return j;
  }

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }

  // Object: insertion order is kept so reports read in schema order.
  Json& set(const std::string& key, Json value);
  const Json& at(const std::string& key) const;  // throws std::out_of_range
  bool has(const std::string& key) const;
  const std::vector<std::pair<std::string, Json>>& items() const { return obj_; }

  Json& push(Json value);
  const std::vector<Json>& elements() const { return arr_; }

  double as_number() const;  // Int or Number
  const std::string& as_string() const;

  std::string dump(int indent = 1) const;
  static Json parse(const std::string& text);  // throws std::runtime_error

 private:
  void dump_to(std::string& out, int indent, int depth) const;

  Kind kind_ = Kind::Null;
  bool bool_ = false;
  int64_t int_ = 0;
  double num_ = 0.0;
  std::string str_;
  std::vector<Json> arr_;
  std::vector<std::pair<std::string, Json>> obj_;
};

}  // namespace dotcom
