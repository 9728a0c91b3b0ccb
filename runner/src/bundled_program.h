// Reader for ExecuTorch BundledProgram files (.bpte): a flatbuffer
// (devtools/bundled_program/schema/bundled_program_schema.fbs, identifier "BP08")
// that wraps the program bytes together with test inputs and expected outputs.
//
// Why our own reader: the executorch wheel ships neither the bundled_program C++
// library nor flatbuffers headers, and the format is four small tables. Every
// offset is bounds-checked, so a corrupt file is an error, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace dotcom {

struct BundledTensor {
  int8_t scalar_type = 0;  // executorch ScalarType value
  std::vector<int32_t> sizes;
  std::vector<uint8_t> dim_order;
  const uint8_t* data = nullptr;  // points into the file buffer
  size_t nbytes = 0;
};

struct BundledValue {
  enum class Kind { None, Tensor, Int, Bool, Double } kind = Kind::None;
  BundledTensor tensor;
  int64_t int_val = 0;
  bool bool_val = false;
  double double_val = 0.0;
};

struct BundledTestCase {
  std::vector<BundledValue> inputs;
  std::vector<BundledValue> expected_outputs;
};

struct BundledTestSuite {
  std::string method_name;
  std::vector<BundledTestCase> test_cases;
};

struct BundledProgram {
  uint32_t version = 0;
  const uint8_t* program = nullptr;  // the embedded .pte bytes, inside the file buffer
  size_t program_size = 0;
  std::vector<BundledTestSuite> suites;

  const BundledTestSuite* suite(const std::string& method) const {
    for (const auto& s : suites) {
      if (s.method_name == method) return &s;
    }
    return nullptr;
  }
};

struct BundledProgramError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// True when the buffer carries the BundledProgram file identifier.
bool is_bundled_program(const uint8_t* data, size_t size);

// Parses the buffer (which must outlive the result). Throws BundledProgramError.
BundledProgram parse_bundled_program(const uint8_t* data, size_t size);

}  // namespace dotcom
