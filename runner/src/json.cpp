#include "json.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace dotcom {

Json& Json::set(const std::string& key, Json value) {
  if (kind_ != Kind::Object) throw std::logic_error("Json::set on a non-object");
  for (auto& kv : obj_) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return kv.second;
    }
  }
  obj_.emplace_back(key, std::move(value));
  return obj_.back().second;
}

const Json& Json::at(const std::string& key) const {
  for (const auto& kv : obj_) {
    if (kv.first == key) return kv.second;
  }
  throw std::out_of_range("missing JSON key: " + key);
}

bool Json::has(const std::string& key) const {
  for (const auto& kv : obj_) {
    if (kv.first == key) return true;
  }
  return false;
}

Json& Json::push(Json value) {
  if (kind_ != Kind::Array) throw std::logic_error("Json::push on a non-array");
  arr_.push_back(std::move(value));
  return arr_.back();
}

double Json::as_number() const {
  if (kind_ == Kind::Int) return static_cast<double>(int_);
  if (kind_ == Kind::Number) return num_;
  throw std::runtime_error("JSON value is not a number");
}

const std::string& Json::as_string() const {
  if (kind_ != Kind::String) throw std::runtime_error("JSON value is not a string");
  return str_;
}

namespace {

void escape_to(std::string& out, const std::string& s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

void newline(std::string& out, int indent, int depth) {
  if (indent <= 0) return;
  out.push_back('\n');
  out.append(static_cast<size_t>(indent * depth), ' ');
}

}  // namespace

void Json::dump_to(std::string& out, int indent, int depth) const {
  switch (kind_) {
    case Kind::Null: out += "null"; break;
    case Kind::Bool: out += bool_ ? "true" : "false"; break;
    case Kind::Int: out += std::to_string(int_); break;
    case Kind::Number: {
      if (!std::isfinite(num_)) {
        out += "null";
        break;
      }
      // Shortest representation that round-trips, like Python's repr(float).
      char buf[64];
      auto res = std::to_chars(buf, buf + sizeof buf, num_);
      std::string s(buf, res.ptr);
      if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
      out += s;
      break;
    }
    case Kind::String: escape_to(out, str_); break;
    case Kind::Array: {
      if (arr_.empty()) {
        out += "[]";
        break;
      }
      // Arrays of scalars stay on one line: latencies_ms has hundreds of entries.
      bool flat = true;
      for (const auto& e : arr_) flat = flat && e.kind_ != Kind::Array && e.kind_ != Kind::Object;
      out.push_back('[');
      for (size_t i = 0; i < arr_.size(); ++i) {
        if (i) out += flat ? ", " : ",";
        if (!flat) newline(out, indent, depth + 1);
        arr_[i].dump_to(out, indent, depth + 1);
      }
      if (!flat) newline(out, indent, depth);
      out.push_back(']');
      break;
    }
    case Kind::Object: {
      if (obj_.empty()) {
        out += "{}";
        break;
      }
      out.push_back('{');
      for (size_t i = 0; i < obj_.size(); ++i) {
        if (i) out.push_back(',');
        newline(out, indent, depth + 1);
        escape_to(out, obj_[i].first);
        out += indent > 0 ? ": " : ":";
        obj_[i].second.dump_to(out, indent, depth + 1);
      }
      newline(out, indent, depth);
      out.push_back('}');
      break;
    }
  }
}

std::string Json::dump(int indent) const {
  std::string out;
  dump_to(out, indent, 0);
  out.push_back('\n');
  return out;
}

namespace {

class Parser {
 public:
  explicit Parser(const std::string& text) : s_(text) {}

  Json parse_document() {
    Json v = value();
    ws();
    if (i_ != s_.size()) fail("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const char* what) {
    throw std::runtime_error(std::string("invalid JSON at offset ") + std::to_string(i_) + ": " + what);
  }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
  }
  bool eat(char c) {
    ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail("unexpected character");
  }
  bool literal(const char* word) {
    size_t n = std::char_traits<char>::length(word);
    if (s_.compare(i_, n, word) == 0) {
      i_ += n;
      return true;
    }
    return false;
  }

  Json value() {
    if (++depth_ > 256) fail("nesting too deep");
    ws();
    if (i_ >= s_.size()) fail("unexpected end");
    Json out;
    char c = s_[i_];
    if (c == '{') {
      ++i_;
      out = Json::object();
      if (!eat('}')) {
        do {
          ws();
          std::string key = string();
          expect(':');
          out.set(key, value());
        } while (eat(','));
        expect('}');
      }
    } else if (c == '[') {
      ++i_;
      out = Json::array();
      if (!eat(']')) {
        do {
          out.push(value());
        } while (eat(','));
        expect(']');
      }
    } else if (c == '"') {
      out = Json(string());
    } else if (literal("true")) {
      out = Json(true);
    } else if (literal("false")) {
      out = Json(false);
    } else if (literal("null")) {
      out = Json();
    } else {
      out = number();
    }
    --depth_;
    return out;
  }

  std::string string() {
    if (i_ >= s_.size() || s_[i_] != '"') fail("expected a string");
    ++i_;
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (i_ >= s_.size()) fail("bad escape");
      char e = s_[i_++];
      switch (e) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'u': {
          if (i_ + 4 > s_.size()) fail("bad \\u escape");
          unsigned cp = static_cast<unsigned>(std::strtoul(s_.substr(i_, 4).c_str(), nullptr, 16));
          i_ += 4;
          // Enough for the ASCII/BMP text this runner reads; surrogates are kept as-is.
          if (cp < 0x80) {
            out.push_back(static_cast<char>(cp));
          } else if (cp < 0x800) {
            out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          } else {
            out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          }
          break;
        }
        default: out.push_back(e);
      }
    }
    if (i_ >= s_.size()) fail("unterminated string");
    ++i_;
    return out;
  }

  Json number() {
    size_t start = i_;
    bool integral = true;
    if (i_ < s_.size() && (s_[i_] == '-' || s_[i_] == '+')) ++i_;
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c >= '0' && c <= '9') {
        ++i_;
      } else if (c == '.' || c == 'e' || c == 'E' || c == '-' || c == '+') {
        integral = false;
        ++i_;
      } else {
        break;
      }
    }
    if (start == i_) fail("unexpected character");
    std::string tok = s_.substr(start, i_ - start);
    char* end = nullptr;
    if (integral) {
      long long v = std::strtoll(tok.c_str(), &end, 10);
      if (*end == '\0') return Json(v);
    }
    double d = std::strtod(tok.c_str(), &end);
    if (*end != '\0') fail("bad number");
    return Json(d);
  }

  const std::string& s_;
  size_t i_ = 0;
  int depth_ = 0;
};

}  // namespace

Json Json::parse(const std::string& text) { return Parser(text).parse_document(); }

}  // namespace dotcom
