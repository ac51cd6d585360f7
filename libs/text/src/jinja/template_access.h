// Library-internal render entry taking an already-built variable dict, so callers that
// assemble the context themselves (ChatTemplate) skip the JSON round trip.
#pragma once

#include <string>

#include "helexa/text/jinja.h"
#include "jinja/value.h"

namespace helexa::text::jinja::detail {

struct TemplateAccess {
    static Result<std::string> render(const Template& t, DictPtr globals,
                                      const RenderOptions& options);
};

}  // namespace helexa::text::jinja::detail
