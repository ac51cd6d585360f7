// `cortex status | models | keys`: read-only views of a running cortex over its HTTP API.
#pragma once

#include <string>

namespace helexa::apps {

// Each prints a table to stdout and returns the process exit code (1 when cortex is unreachable).
int cortex_status(const std::string& endpoint);
int cortex_models(const std::string& endpoint);
// Spend lives on the metrics listener (operators only): `endpoint`'s port + 1 unless the endpoint
// already names the metrics port.
int cortex_keys(const std::string& endpoint);

}  // namespace helexa::apps
