// Metrics registry and Prometheus text exposition (format 0.0.4).
#include "helexa/common/metrics.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

namespace helexa::metrics {

namespace {

// atomic<double>::fetch_add is C++20 but spelled as a CAS loop here so every standard library
// we build with (libstdc++ under g++ and clang) gives the same lock-free code.
void atomic_add(std::atomic<double>& target, double by) {
    double current = target.load(std::memory_order_relaxed);
    while (!target.compare_exchange_weak(current, current + by, std::memory_order_relaxed)) {
    }
}

bool valid_metric_name(std::string_view name) {
    if (name.empty()) {
        return false;
    }
    for (size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool valid_label_name(std::string_view name) {
    if (name.empty() || name.substr(0, 2) == "__") {
        return false;
    }
    for (size_t i = 0; i < name.size(); ++i) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok) {
            return false;
        }
    }
    return true;
}

std::string escape_help(std::string_view help) {
    std::string out;
    out.reserve(help.size());
    for (char c : help) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string_view type_name(MetricType type) {
    switch (type) {
        case MetricType::kCounter:
            return "counter";
        case MetricType::kGauge:
            return "gauge";
        case MetricType::kHistogram:
            return "histogram";
    }
    return "untyped";
}

// `{a="x",b="y"}` (with an optional extra pair, e.g. le), or "" when there are no labels.
std::string label_block(const std::vector<std::string>& names,
                        const std::vector<std::string>& values, std::string_view extra_name = {},
                        std::string_view extra_value = {}) {
    if (names.empty() && extra_name.empty()) {
        return {};
    }
    std::string out = "{";
    for (size_t i = 0; i < names.size(); ++i) {
        if (i > 0) {
            out += ',';
        }
        out += fmt::format("{}=\"{}\"", names[i], escape_label_value(values[i]));
    }
    if (!extra_name.empty()) {
        if (!names.empty()) {
            out += ',';
        }
        out += fmt::format("{}=\"{}\"", extra_name, extra_value);
    }
    out += '}';
    return out;
}

void render_header(const detail::FamilyBase& family, std::string& out) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", family.name(), escape_help(family.help()),
                       family.name(), type_name(family.type()));
}

void render_child(const detail::FamilyBase& family, const std::vector<std::string>& values,
                  const Counter& c, std::string& out) {
    out += fmt::format("{}{} {}\n", family.name(), label_block(family.label_names(), values),
                       format_value(c.value()));
}

void render_child(const detail::FamilyBase& family, const std::vector<std::string>& values,
                  const Gauge& g, std::string& out) {
    out += fmt::format("{}{} {}\n", family.name(), label_block(family.label_names(), values),
                       format_value(g.value()));
}

void render_child(const HistogramFamily& family, const std::vector<std::string>& values,
                  const Histogram& h, std::string& out) {
    Histogram::Snapshot snap = h.snapshot();
    const auto& bounds = family.bounds();
    for (size_t i = 0; i < snap.cumulative.size(); ++i) {
        std::string le = i < bounds.size() ? format_value(bounds[i]) : "+Inf";
        out += fmt::format("{}_bucket{} {}\n", family.name(),
                           label_block(family.label_names(), values, "le", le),
                           snap.cumulative[i]);
    }
    std::string labels = label_block(family.label_names(), values);
    out += fmt::format("{}_sum{} {}\n", family.name(), labels, format_value(snap.sum));
    out += fmt::format("{}_count{} {}\n", family.name(), labels, snap.count);
}

}  // namespace

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string format_value(double v) {
    if (std::isnan(v)) {
        return "NaN";
    }
    if (std::isinf(v)) {
        return v > 0 ? "+Inf" : "-Inf";
    }
    return fmt::format("{}", v);
}

void Counter::inc(double by) {
    if (!(by > 0.0)) {
        return;  // also drops NaN
    }
    atomic_add(value_, by);
}

void Gauge::add(double by) {
    atomic_add(value_, by);
}

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), counts_(new std::atomic<uint64_t>[bounds->size() + 1]) {
    for (size_t i = 0; i <= bounds_->size(); ++i) {
        counts_[i].store(0, std::memory_order_relaxed);
    }
}

void Histogram::observe(double v) {
    // NOTE: bounds are few (tens at most) and sorted; lower_bound finds the first bound >= v.
    // NaN compares false everywhere and lands in +Inf, as in the Go client.
    size_t index = static_cast<size_t>(
        std::lower_bound(bounds_->begin(), bounds_->end(), v) - bounds_->begin());
    if (std::isnan(v)) {
        index = bounds_->size();
    }
    counts_[index].fetch_add(1, std::memory_order_relaxed);
    atomic_add(sum_, v);
}

Histogram::Snapshot Histogram::snapshot() const {
    Snapshot snap;
    snap.cumulative.resize(bounds_->size() + 1);
    uint64_t running = 0;
    for (size_t i = 0; i <= bounds_->size(); ++i) {
        running += counts_[i].load(std::memory_order_relaxed);
        snap.cumulative[i] = running;
    }
    // Count from the buckets so _count always equals the +Inf bucket, even mid-update.
    snap.count = running;
    snap.sum = sum_.load(std::memory_order_relaxed);
    return snap;
}

std::vector<double> default_buckets() {
    return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> exponential_buckets(double start, double factor, int count) {
    if (!(start > 0) || !(factor > 1) || count < 1) {
        throw std::invalid_argument("exponential_buckets: need start > 0, factor > 1, count >= 1");
    }
    std::vector<double> out;
    double v = start;
    for (int i = 0; i < count; ++i) {
        out.push_back(v);
        v *= factor;
    }
    return out;
}

std::vector<double> linear_buckets(double start, double width, int count) {
    if (!(width > 0) || count < 1) {
        throw std::invalid_argument("linear_buckets: need width > 0, count >= 1");
    }
    std::vector<double> out;
    for (int i = 0; i < count; ++i) {
        out.push_back(start + width * i);
    }
    return out;
}

namespace detail {

void FamilyBase::check_label_count(size_t n) const {
    if (n != label_names_.size()) {
        throw std::invalid_argument(fmt::format("metric {}: {} label values given, {} expected",
                                                name_, n, label_names_.size()));
    }
}

}  // namespace detail

template <typename Child>
Family<Child>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                      std::vector<double> bounds)
    : detail::FamilyBase(std::move(name), std::move(help), std::move(label_names),
                         std::is_same_v<Child, Counter>
                             ? MetricType::kCounter
                             : (std::is_same_v<Child, Gauge> ? MetricType::kGauge
                                                             : MetricType::kHistogram)),
      bounds_(std::move(bounds)) {
    // A family without labels shows its single series (at 0) from the start.
    if (detail::FamilyBase::label_names().empty()) {
        get();
    }
}

template <typename Child>
Child& Family<Child>::with(const std::vector<std::string>& label_values) {
    check_label_count(label_values.size());
    std::lock_guard lock(mutex_);
    auto it = children_.find(label_values);
    if (it == children_.end()) {
        std::unique_ptr<Child> child;
        if constexpr (std::is_same_v<Child, Histogram>) {
            child = std::make_unique<Histogram>(&bounds_);
        } else {
            child = std::make_unique<Child>();
        }
        it = children_.emplace(label_values, std::move(child)).first;
    }
    return *it->second;
}

template <typename Child>
Child& Family<Child>::with(std::initializer_list<std::string_view> label_values) {
    std::vector<std::string> values;
    values.reserve(label_values.size());
    for (std::string_view v : label_values) {
        values.emplace_back(v);
    }
    return with(values);
}

template <typename Child>
void Family<Child>::render(std::string& out) const {
    render_header(*this, out);
    std::lock_guard lock(mutex_);
    for (const auto& [values, child] : children_) {
        render_child(*this, values, *child, out);
    }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

template <typename Child>
Family<Child>& Registry::add(const std::string& name, const std::string& help,
                             std::vector<std::string> label_names, MetricType type,
                             std::vector<double> bounds) {
    if (!valid_metric_name(name)) {
        throw std::invalid_argument(fmt::format("invalid metric name '{}'", name));
    }
    for (const std::string& label : label_names) {
        if (!valid_label_name(label) || (type == MetricType::kHistogram && label == "le")) {
            throw std::invalid_argument(
                fmt::format("metric {}: invalid label name '{}'", name, label));
        }
    }
    for (size_t i = 0; i < label_names.size(); ++i) {
        for (size_t j = i + 1; j < label_names.size(); ++j) {
            if (label_names[i] == label_names[j]) {
                throw std::invalid_argument(
                    fmt::format("metric {}: duplicate label name '{}'", name, label_names[i]));
            }
        }
    }
    std::lock_guard lock(mutex_);
    auto it = families_.find(name);
    if (it != families_.end()) {
        auto* existing = dynamic_cast<Family<Child>*>(it->second.get());
        if (existing == nullptr || existing->label_names() != label_names ||
            (type == MetricType::kHistogram && existing->bounds() != bounds)) {
            throw std::invalid_argument(fmt::format(
                "metric {} already registered with another type, labels or buckets", name));
        }
        return *existing;
    }
    auto family = std::make_unique<Family<Child>>(name, help, std::move(label_names),
                                                  std::move(bounds));
    auto& ref = *family;
    families_.emplace(name, std::move(family));
    return ref;
}

CounterFamily& Registry::counter(const std::string& name, const std::string& help,
                                 std::vector<std::string> label_names) {
    return add<Counter>(name, help, std::move(label_names), MetricType::kCounter, {});
}

GaugeFamily& Registry::gauge(const std::string& name, const std::string& help,
                             std::vector<std::string> label_names) {
    return add<Gauge>(name, help, std::move(label_names), MetricType::kGauge, {});
}

HistogramFamily& Registry::histogram(const std::string& name, const std::string& help,
                                     std::vector<std::string> label_names,
                                     std::vector<double> buckets) {
    // +Inf is implicit; accept it at the end for callers that spell it out.
    if (!buckets.empty() && std::isinf(buckets.back()) && buckets.back() > 0) {
        buckets.pop_back();
    }
    for (size_t i = 0; i < buckets.size(); ++i) {
        if (!std::isfinite(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1]))) {
            throw std::invalid_argument(
                fmt::format("metric {}: buckets must be finite and strictly increasing", name));
        }
    }
    return add<Histogram>(name, help, std::move(label_names), MetricType::kHistogram,
                          std::move(buckets));
}

std::string Registry::expose() const {
    std::string out;
    std::lock_guard lock(mutex_);
    for (const auto& [name, family] : families_) {
        family->render(out);
    }
    return out;
}

Registry& default_registry() {
    static Registry* registry = new Registry();  // never destroyed: metrics may tick during exit
    return *registry;
}

}  // namespace helexa::metrics
