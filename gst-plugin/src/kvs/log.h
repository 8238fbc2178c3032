// Logging hook shared by the kvs/ classes. They never print: each takes an optional LogSink
// and the element routes it to its GST_DEBUG category (Error -> GST_ERROR, Warning ->
// GST_WARNING, Info -> GST_INFO, Debug -> GST_DEBUG, Trace -> GST_LOG).
//
// Messages never contain secrets (secret keys, session tokens, signatures).
// A sink may be called from any thread the class uses; it must be thread-safe.
#pragma once

#include <functional>
#include <string>

namespace kvs {

enum class LogLevel { Error, Warning, Info, Debug, Trace };

using LogSink = std::function<void(LogLevel, const std::string&)>;

/// Calls `sink` if it is set.
inline void logTo(const LogSink& sink, LogLevel level, const std::string& message) {
  if (sink) sink(level, message);
}

}  // namespace kvs
