// Runs the neuron daemon until SIGINT/SIGTERM; returns the exit code. After a device loss it
// re-executes itself with `argv` instead (process_restart.h).
#pragma once

#include <string>
#include <vector>

namespace helexa::apps {

// `config_given`: the operator named the file, so a missing file is an error (exit 2); the
// default path may be absent (documented defaults apply).
int run_neuron(const std::string& config_path, bool config_given,
               const std::vector<std::string>& argv);

}  // namespace helexa::apps
