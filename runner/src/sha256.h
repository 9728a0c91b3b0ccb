// SHA-256 of the artifact bytes, so a report names exactly which file was timed
// (the manifest beside every artifact carries the same digest).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dotcom {

std::string sha256_hex(const uint8_t* data, size_t size);

}  // namespace dotcom
