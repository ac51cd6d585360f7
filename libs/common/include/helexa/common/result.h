// helexa::Result<T>: the return type of every fallible library function (tl::expected<T, Error>).
// Exceptions are used only at two edges: start-up/config loading (caught in main, exit 2) and the
// per-connection catch-all in the HTTP server.
#pragma once

#include <tl/expected.hpp>

#include "helexa/common/error.h"

namespace helexa {

template <typename T>
using Result = tl::expected<T, Error>;

using Status = tl::expected<void, Error>;

// Builds the unexpected side: `return fail(ErrorCode::kInvalidRequest, "missing model");`
inline tl::unexpected<Error> fail(ErrorCode code, std::string message) {
    return tl::unexpected<Error>(Error(code, std::move(message)));
}
inline tl::unexpected<Error> fail(Error error) {
    return tl::unexpected<Error>(std::move(error));
}

inline Status ok() {
    return {};
}

}  // namespace helexa

// Propagates an error from an expression returning Result/Status, binding nothing.
#define HELEXA_TRY_STATUS(expr)                                         \
    do {                                                                \
        auto helexa_try_result_ = (expr);                               \
        if (!helexa_try_result_) {                                      \
            return ::tl::unexpected(std::move(helexa_try_result_).error()); \
        }                                                               \
    } while (false)
