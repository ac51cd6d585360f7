// Unicode canonical normalization (NFC, NFD) from tables generated out of the UCD that Debian's
// python3 ships (see gen_unicode_nfc_table.py). Internal to the tokenizer.
// Thread-safety: pure functions over constant tables.
#pragma once

#include <string>
#include <string_view>

namespace helexa::text::detail {

// True when `s` (valid UTF-8) contains no character that NFC could change in any context;
// such strings are already in NFC and NFD-stable only if also free of composites (see nfd).
bool nfc_quick_check(std::string_view s);

// NFC / NFD of valid UTF-8 `s`.
std::string to_nfc(std::string_view s);
std::string to_nfd(std::string_view s);

}  // namespace helexa::text::detail
