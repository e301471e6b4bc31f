#pragma once
namespace kassa {
inline constexpr const char* kassa_version = "0.1.0";
}
