// Fuzzes the config loader: TOML parsing, typed access over every key (as each type), nested
// tables and arrays of tables, unknown-key tracking, environment conversion and listen parsing.
// Any exception other than ConfigError, or any sanitizer report, is a bug.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "helexa/common/config.h"

namespace {

void read_every_way(const helexa::ConfigReader& reader, const std::string& key) {
    auto attempt = [](auto&& fn) {
        try {
            fn();
        } catch (const helexa::ConfigError&) {
            // Expected for mismatched types.
        }
    };
    attempt([&] { (void)reader.get_optional<bool>(key); });
    attempt([&] { (void)reader.get_optional<int64_t>(key); });
    attempt([&] { (void)reader.get_optional<uint16_t>(key); });
    attempt([&] { (void)reader.get_optional<double>(key); });
    attempt([&] { (void)reader.get_optional<std::string>(key); });
    attempt([&] { (void)reader.get_optional<std::vector<std::string>>(key); });
    attempt([&] { (void)reader.get_optional<std::vector<int64_t>>(key); });
    attempt([&] { (void)reader.get_optional<std::vector<double>>(key); });
    attempt([&] { (void)reader.get_optional<helexa::ListenAddress>(key); });
}

void visit(const helexa::ConfigReader& reader, int depth) {
    if (depth > 8) {
        return;
    }
    for (const std::string& key : reader.keys()) {
        try {
            helexa::ConfigReader child = reader.child_table(key);
            visit(child, depth + 1);
        } catch (const helexa::ConfigError&) {
            read_every_way(reader, key);
        }
        try {
            for (const auto& element : reader.table_array(key)) {
                visit(element, depth + 1);
            }
        } catch (const helexa::ConfigError&) {
            // Not an array of tables.
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    // The same bytes also serve as environment override values and a listen address.
    helexa::Environment env{{"FUZZ_PORT", std::string(text.substr(0, 64))},
                            {"FUZZ_A__B", std::string(text.substr(0, 64))}};
    (void)helexa::parse_listen_address(text.substr(0, 128));
    try {
        auto reader = helexa::ConfigReader::from_string(text, "fuzz.toml", "FUZZ_", env);
        visit(reader, 0);
        read_every_way(reader, "port");
        read_every_way(reader, "a.b");
        try {
            (void)reader.get_optional<int>("a[0].b");
        } catch (const helexa::ConfigError&) {
        }
        (void)reader.unknown_keys();
    } catch (const helexa::ConfigError&) {
        // Malformed TOML.
    }
    return 0;
}
