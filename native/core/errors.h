// The core reports every failure by throwing spdfq::Error; the binding turns it into a
// JavaScript exception (the addon never aborts or exits). `code` matches lib/errors.ts.
#pragma once

#include <stdexcept>
#include <string>

namespace spdfq {

class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message) : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

[[noreturn]] inline void fail(const char* code, const std::string& message) { throw Error(code, message); }

}  // namespace spdfq
