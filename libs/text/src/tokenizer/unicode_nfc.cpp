// NFC/NFD: recursive canonical decomposition, canonical ordering, canonical composition
// (UAX #15), with Hangul syllables handled algorithmically.
#include "tokenizer/unicode_nfc.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "tokenizer/utf8.h"

namespace helexa::text::detail {
namespace {

struct CccEntry {
    char32_t cp;
    uint8_t ccc;
};
struct DecompEntry {
    char32_t cp;
    char32_t first;
    char32_t second;
};
struct ComposeEntry {
    uint64_t key;
    char32_t composite;
};
struct RangeEntry {
    char32_t lo;
    char32_t hi;
};

#include "tokenizer/unicode_nfc_table.inc"

constexpr char32_t kSBase = 0xAC00;
constexpr char32_t kLBase = 0x1100;
constexpr char32_t kVBase = 0x1161;
constexpr char32_t kTBase = 0x11A7;
constexpr char32_t kLCount = 19;
constexpr char32_t kVCount = 21;
constexpr char32_t kTCount = 28;
constexpr char32_t kNCount = kVCount * kTCount;
constexpr char32_t kSCount = kLCount * kNCount;

uint8_t ccc_of(char32_t cp) {
    if (cp < 0x300) {
        return 0;
    }
    const auto* it = std::lower_bound(std::begin(kCcc), std::end(kCcc), cp,
                                      [](const CccEntry& e, char32_t v) { return e.cp < v; });
    return (it != std::end(kCcc) && it->cp == cp) ? it->ccc : 0;
}

bool is_unsafe(char32_t cp) {
    if (cp < 0x300) {
        return false;
    }
    const auto* it =
        std::upper_bound(std::begin(kUnsafeRanges), std::end(kUnsafeRanges), cp,
                         [](char32_t v, const RangeEntry& e) { return v < e.lo; });
    if (it == std::begin(kUnsafeRanges)) {
        return false;
    }
    --it;
    return cp <= it->hi;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
    if (cp >= kSBase && cp < kSBase + kSCount) {
        const char32_t s = cp - kSBase;
        out.push_back(kLBase + s / kNCount);
        out.push_back(kVBase + (s % kNCount) / kTCount);
        if (s % kTCount != 0) {
            out.push_back(kTBase + s % kTCount);
        }
        return;
    }
    if (cp >= 0xC0) {
        const auto* it =
            std::lower_bound(std::begin(kDecomp), std::end(kDecomp), cp,
                             [](const DecompEntry& e, char32_t v) { return e.cp < v; });
        if (it != std::end(kDecomp) && it->cp == cp) {
            decompose(it->first, out);
            if (it->second != 0) {
                decompose(it->second, out);
            }
            return;
        }
    }
    out.push_back(cp);
}

char32_t compose_pair(char32_t a, char32_t b) {
    if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
        return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
    }
    if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
        b < kTBase + kTCount) {
        return a + (b - kTBase);
    }
    const uint64_t key = (static_cast<uint64_t>(a) << 21) | b;
    const auto* it = std::lower_bound(std::begin(kCompose), std::end(kCompose), key,
                                      [](const ComposeEntry& e, uint64_t v) { return e.key < v; });
    return (it != std::end(kCompose) && it->key == key) ? it->composite : 0;
}

std::vector<char32_t> decompose_all(std::string_view s) {
    std::vector<char32_t> cps;
    cps.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        decompose(utf8_next(s, i), cps);
    }
    // Canonical ordering: stable-sort each run of non-starters by combining class.
    for (size_t i = 0; i < cps.size();) {
        if (ccc_of(cps[i]) == 0) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < cps.size() && ccc_of(cps[j]) != 0) {
            ++j;
        }
        std::stable_sort(cps.begin() + static_cast<std::ptrdiff_t>(i),
                         cps.begin() + static_cast<std::ptrdiff_t>(j),
                         [](char32_t a, char32_t b) { return ccc_of(a) < ccc_of(b); });
        i = j;
    }
    return cps;
}

std::string encode_all(const std::vector<char32_t>& cps, size_t size_hint) {
    std::string out;
    out.reserve(size_hint);
    for (char32_t cp : cps) {
        utf8_append(cp, out);
    }
    return out;
}

}  // namespace

bool nfc_quick_check(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        if (static_cast<unsigned char>(s[i]) < 0xCC) {  // every code point below U+0300
            i += utf8_char_len(static_cast<unsigned char>(s[i]));
            continue;
        }
        if (is_unsafe(utf8_next(s, i))) {
            return false;
        }
    }
    return true;
}

std::string to_nfd(std::string_view s) {
    return encode_all(decompose_all(s), s.size() + 8);
}

namespace {

// NFC of one span that starts at a safe starter (or the text start) and ends before one.
void nfc_span(std::string_view s, std::string& out) {
    const std::vector<char32_t> cps = decompose_all(s);
    std::vector<char32_t> composed;
    composed.reserve(cps.size());
    std::ptrdiff_t starter = -1;
    uint8_t prev_ccc = 0;
    for (char32_t ch : cps) {
        const uint8_t cc = ccc_of(ch);
        if (starter >= 0) {
            const bool adjacent = static_cast<std::ptrdiff_t>(composed.size()) - 1 == starter;
            const bool blocked = !adjacent && (prev_ccc == 0 || prev_ccc >= cc);
            if (!blocked) {
                const char32_t composite =
                    compose_pair(composed[static_cast<size_t>(starter)], ch);
                if (composite != 0) {
                    composed[static_cast<size_t>(starter)] = composite;
                    continue;
                }
            }
        }
        if (cc == 0) {
            starter = static_cast<std::ptrdiff_t>(composed.size());
        }
        prev_ccc = cc;
        composed.push_back(ch);
    }
    for (char32_t cp : composed) {
        utf8_append(cp, out);
    }
}

}  // namespace

// Only the spans around "unsafe" characters are normalized: a safe character (NFC_QC=Yes,
// combining class 0) is a starter that nothing before it can combine with or reorder across,
// so the text splits into independent spans at safe characters.
std::string to_nfc(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    size_t copied = 0;      // s[0, copied) is already in `out`
    size_t last_safe = 0;   // start of the last safe character seen (span start candidate)
    size_t i = 0;
    while (i < s.size()) {
        const size_t at = i;
        if (static_cast<unsigned char>(s[i]) < 0xCC) {  // below U+0300: always safe
            i += utf8_char_len(static_cast<unsigned char>(s[i]));
            last_safe = at;
            continue;
        }
        if (!is_unsafe(utf8_next(s, i))) {
            last_safe = at;
            continue;
        }
        // An unsafe run: extend to the next safe character.
        size_t end = i;
        while (end < s.size()) {
            size_t k = end;
            if (static_cast<unsigned char>(s[k]) < 0xCC) {
                break;
            }
            if (!is_unsafe(utf8_next(s, k))) {
                break;
            }
            end = k;
        }
        const size_t start = std::max(last_safe, copied);
        out.append(s.substr(copied, start - copied));
        nfc_span(s.substr(start, end - start), out);
        copied = end;
        i = end;
        last_safe = end;
    }
    out.append(s.substr(copied));
    return out;
}

}  // namespace helexa::text::detail
