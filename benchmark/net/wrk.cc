#include "benchmark/net/wrk.h"

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "benchmark/net/subprocess.h"

namespace weft::bench::net {

namespace {

// wrk's time with its unit ("635.91us", "2.41ms", "1.00s", "1.50m", "2.00h")
// in microseconds; false if it is not one.
bool ParseWrkTime(const std::string& text, double* us) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str()) return false;
  const std::string unit = end;
  if (unit == "us") {
    *us = value;
  } else if (unit == "ms") {
    *us = value * 1e3;
  } else if (unit == "s") {
    *us = value * 1e6;
  } else if (unit == "m") {
    *us = value * 60e6;
  } else if (unit == "h") {
    *us = value * 3600e6;
  } else {
    return false;
  }
  return true;
}

std::string Trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

}  // namespace

std::string ParseWrkOutput(const std::string& output, WrkResult* result) {
  bool have_rate = false;
  bool have_p99 = false;
  bool in_distribution = false;
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    const std::string text = Trim(line);
    if (text.rfind("Latency Distribution", 0) == 0) {
      in_distribution = true;
      continue;
    }
    if (in_distribution && text.rfind("99%", 0) == 0) {
      if (!ParseWrkTime(Trim(text.substr(3)), &result->p99_us)) {
        return "cannot read wrk's 99% line \"" + text + "\"";
      }
      have_p99 = true;
      continue;
    }
    if (text.rfind("Requests/sec:", 0) == 0) {
      char* end = nullptr;
      const std::string value = Trim(text.substr(13));
      result->requests_per_second = std::strtod(value.c_str(), &end);
      if (end == value.c_str()) return "cannot read wrk's line \"" + text + "\"";
      have_rate = true;
      continue;
    }
    // "1037376 requests in 10.00s, 126.63MB read"
    const auto requests = text.find(" requests in ");
    if (requests != std::string::npos) {
      result->requests = std::strtod(text.c_str(), nullptr);
      continue;
    }
    // "Socket errors: connect 0, read 0, write 0, timeout 12" and
    // "Non-2xx or 3xx responses: 5" appear only when something went wrong.
    if (text.rfind("Socket errors:", 0) == 0 || text.rfind("Non-2xx or 3xx", 0) == 0) {
      return "wrk reported " + text;
    }
  }
  if (!have_rate) return "wrk printed no Requests/sec line";
  if (!have_p99) return "wrk printed no 99% latency line";
  if (result->requests_per_second <= 0) return "wrk completed no request";
  return "";
}

std::string RunWrk(const WrkOptions& options, WrkResult* result) {
  std::string error;
  std::unique_ptr<Subprocess> wrk =
      Subprocess::Start({{options.program, "-t" + std::to_string(options.threads),
                          "-c" + std::to_string(options.connections),
                          "-d" + std::to_string(options.seconds) + "s", "--latency",
                          "http://127.0.0.1:" + std::to_string(options.port) + "/"}},
                        &error);
  if (!wrk) return error;
  const auto deadline =
      Subprocess::Clock::now() + std::chrono::seconds(options.seconds + 30);
  std::string output;
  if (!wrk->ReadToEnd(deadline, &output, &error)) return error;
  if (!wrk->Wait(deadline)) return "wrk did not end in time";
  if (!wrk->ended_cleanly()) return "wrk " + wrk->DescribeEnd();
  return ParseWrkOutput(output, result);
}

}  // namespace weft::bench::net
