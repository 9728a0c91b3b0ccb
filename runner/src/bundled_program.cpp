#include "bundled_program.h"

#include <cstring>

namespace dotcom {
namespace {

// Minimal, bounds-checked flatbuffer access: tables via their vtable, vectors of
// scalars and of table offsets, strings.
class Flat {
 public:
  Flat(const uint8_t* data, size_t size) : d_(data), n_(size) {}

  template <typename T>
  T read(size_t off) const {
    if (off > n_ || sizeof(T) > n_ - off) fail("offset out of range");
    T v;
    std::memcpy(&v, d_ + off, sizeof(T));
    return v;
  }

  struct Table {
    size_t pos = 0;
    size_t vtable = 0;
    uint16_t vtable_size = 0;
  };

  Table table(size_t pos) const {
    Table t;
    t.pos = pos;
    int32_t soff = read<int32_t>(pos);
    int64_t vt = static_cast<int64_t>(pos) - soff;
    if (vt < 0 || static_cast<uint64_t>(vt) >= n_) fail("bad vtable offset");
    t.vtable = static_cast<size_t>(vt);
    t.vtable_size = read<uint16_t>(t.vtable);
    if (t.vtable_size < 4) fail("bad vtable size");
    return t;
  }

  // Absolute position of field `id`, or 0 when absent.
  size_t field(const Table& t, int id) const {
    size_t slot = 4 + 2 * static_cast<size_t>(id);
    if (slot + 2 > t.vtable_size) return 0;
    uint16_t rel = read<uint16_t>(t.vtable + slot);
    return rel ? t.pos + rel : 0;
  }

  template <typename T>
  T scalar(const Table& t, int id, T def) const {
    size_t p = field(t, id);
    return p ? read<T>(p) : def;
  }

  // Follows a uoffset stored at `p`; 0 when the field is absent.
  size_t deref(size_t p) const {
    if (!p) return 0;
    uint32_t rel = read<uint32_t>(p);
    if (rel == 0 || rel > n_ - p) fail("bad reference");
    return p + rel;
  }

  // Vector at absolute position `v`: returns (count, first element position).
  std::pair<size_t, size_t> vec(size_t v, size_t elem_size) const {
    if (!v) return {0, 0};
    uint32_t count = read<uint32_t>(v);
    size_t start = v + 4;
    if (elem_size && count > (n_ - start) / elem_size) fail("vector out of range");
    return {count, start};
  }

  std::string str(size_t s) const {
    if (!s) return "";
    auto [len, start] = vec(s, 1);
    return std::string(reinterpret_cast<const char*>(d_ + start), len);
  }

  const uint8_t* ptr(size_t off) const { return d_ + off; }

  [[noreturn]] static void fail(const char* what) {
    throw BundledProgramError(std::string("corrupt bundled program: ") + what);
  }

 private:
  const uint8_t* d_;
  size_t n_;
};

// Union type tags of ValueUnion, in schema order.
enum : uint8_t { kNone = 0, kTensor = 1, kInt = 2, kBool = 3, kDouble = 4 };

BundledValue parse_value(const Flat& f, size_t pos) {
  Flat::Table t = f.table(pos);
  BundledValue v;
  uint8_t type = f.scalar<uint8_t>(t, 0, kNone);
  size_t obj = f.deref(f.field(t, 1));
  if (type == kNone || !obj) return v;
  Flat::Table o = f.table(obj);
  switch (type) {
    case kTensor: {
      v.kind = BundledValue::Kind::Tensor;
      v.tensor.scalar_type = f.scalar<int8_t>(o, 0, 0);
      auto [ns, sizes] = f.vec(f.deref(f.field(o, 1)), 4);
      for (size_t i = 0; i < ns; ++i) v.tensor.sizes.push_back(f.read<int32_t>(sizes + 4 * i));
      auto [nd, data] = f.vec(f.deref(f.field(o, 2)), 1);
      v.tensor.data = nd ? f.ptr(data) : nullptr;
      v.tensor.nbytes = nd;
      auto [no, order] = f.vec(f.deref(f.field(o, 3)), 1);
      for (size_t i = 0; i < no; ++i) v.tensor.dim_order.push_back(f.read<uint8_t>(order + i));
      break;
    }
    case kInt:
      v.kind = BundledValue::Kind::Int;
      v.int_val = f.scalar<int64_t>(o, 0, 0);
      break;
    case kBool:
      v.kind = BundledValue::Kind::Bool;
      v.bool_val = f.scalar<uint8_t>(o, 0, 0) != 0;
      break;
    case kDouble:
      v.kind = BundledValue::Kind::Double;
      v.double_val = f.scalar<double>(o, 0, 0.0);
      break;
    default:
      Flat::fail("unknown value type");
  }
  return v;
}

std::vector<BundledValue> parse_values(const Flat& f, size_t vec_pos) {
  std::vector<BundledValue> out;
  auto [n, start] = f.vec(vec_pos, 4);
  for (size_t i = 0; i < n; ++i) out.push_back(parse_value(f, f.deref(start + 4 * i)));
  return out;
}

}  // namespace

bool is_bundled_program(const uint8_t* data, size_t size) {
  return size >= 8 && std::memcmp(data + 4, "BP", 2) == 0;
}

BundledProgram parse_bundled_program(const uint8_t* data, size_t size) {
  if (!is_bundled_program(data, size)) Flat::fail("missing BP file identifier");
  Flat f(data, size);
  BundledProgram bp;
  // The root offset sits at byte 0, so it cannot go through deref() (0 = absent).
  const uint32_t root_pos = f.read<uint32_t>(0);
  if (root_pos < 8 || root_pos >= size) Flat::fail("bad root offset");
  Flat::Table root = f.table(root_pos);
  bp.version = f.scalar<uint32_t>(root, 0, 0);
  auto [ns, suites] = f.vec(f.deref(f.field(root, 1)), 4);
  for (size_t i = 0; i < ns; ++i) {
    Flat::Table st = f.table(f.deref(suites + 4 * i));
    BundledTestSuite suite;
    suite.method_name = f.str(f.deref(f.field(st, 0)));
    auto [nc, cases] = f.vec(f.deref(f.field(st, 1)), 4);
    for (size_t c = 0; c < nc; ++c) {
      Flat::Table ct = f.table(f.deref(cases + 4 * c));
      BundledTestCase tc;
      tc.inputs = parse_values(f, f.deref(f.field(ct, 0)));
      tc.expected_outputs = parse_values(f, f.deref(f.field(ct, 1)));
      suite.test_cases.push_back(std::move(tc));
    }
    bp.suites.push_back(std::move(suite));
  }
  auto [np, program] = f.vec(f.deref(f.field(root, 2)), 1);
  if (np == 0) Flat::fail("no embedded program");
  bp.program = f.ptr(program);
  bp.program_size = np;
  return bp;
}

}  // namespace dotcom
