// Small ASCII text helpers shared by the kvs/ classes (HTTP header names and values, files).
#pragma once

#include <string>

namespace kvs {

/// ASCII lower case (header names, hex).
inline std::string toLower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

/// Without leading and trailing spaces, tabs and line breaks.
inline std::string trim(const std::string& s) {
  const char* ws = " \t\r\n";
  const size_t first = s.find_first_not_of(ws);
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(ws) - first + 1);
}

}  // namespace kvs
