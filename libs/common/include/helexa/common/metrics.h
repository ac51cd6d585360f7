// Metrics: counters, gauges and histograms with fixed label names per family, exposed in the
// Prometheus text format 0.0.4 (what cortex serves on :31314/metrics and neuron on /metrics).
//
// Use: register each family once at start-up (registration validates names and may throw
// std::invalid_argument), resolve the children you need with with({...}) and keep the returned
// reference; the hot path is then a relaxed atomic add. Children live as long as the registry.
//   auto& ttft = metrics::default_registry().histogram(
//       "cortex_time_to_first_token_seconds", "Time to first body chunk", {"model", "node"},
//       metrics::default_buckets());
//   ttft.with({"qwen3", "n1"}).observe(0.12);
//
// Thread-safety: everything is thread-safe. Child updates are lock-free; with() and expose() take
// a per-family mutex; registration takes the registry mutex.
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace helexa::metrics {

// Content-Type of the exposition.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

enum class MetricType { kCounter, kGauge, kHistogram };

// A monotonically increasing value. Negative increments are ignored (a counter never goes down).
class Counter {
public:
    void inc(double by = 1.0);
    double value() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<double> value_{0.0};
};

// A value that goes up and down.
class Gauge {
public:
    void set(double v) { value_.store(v, std::memory_order_relaxed); }
    void inc(double by = 1.0) { add(by); }
    void dec(double by = 1.0) { add(-by); }
    void add(double by);
    double value() const { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<double> value_{0.0};
};

// Observations counted into buckets with upper bounds `le` (value <= le), plus sum and count.
class Histogram {
public:
    // `bounds` is owned by the family and outlives the child.
    explicit Histogram(const std::vector<double>* bounds);

    void observe(double v);

    struct Snapshot {
        std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
        double sum = 0.0;
        uint64_t count = 0;
    };
    Snapshot snapshot() const;

private:
    const std::vector<double>* bounds_;
    std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket (not cumulative), last = +Inf
    std::atomic<double> sum_{0.0};
};

// Common buckets. default_buckets() = Prometheus' defaults (.005 ... 10).
std::vector<double> default_buckets();
// start, start*factor, ... (count bounds). start > 0, factor > 1, count >= 1.
std::vector<double> exponential_buckets(double start, double factor, int count);
// start, start+width, ... (count bounds). width > 0, count >= 1.
std::vector<double> linear_buckets(double start, double width, int count);

namespace detail {

class FamilyBase {
public:
    FamilyBase(std::string name, std::string help, std::vector<std::string> label_names,
               MetricType type)
        : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)),
          type_(type) {}
    virtual ~FamilyBase() = default;
    FamilyBase(const FamilyBase&) = delete;
    FamilyBase& operator=(const FamilyBase&) = delete;

    const std::string& name() const { return name_; }
    const std::string& help() const { return help_; }
    const std::vector<std::string>& label_names() const { return label_names_; }
    MetricType type() const { return type_; }

    // Appends this family's exposition (HELP, TYPE, samples) to `out`.
    virtual void render(std::string& out) const = 0;

protected:
    void check_label_count(size_t n) const;

private:
    std::string name_;
    std::string help_;
    std::vector<std::string> label_names_;
    MetricType type_;
};

}  // namespace detail

// One metric name with its label names; children per label-value tuple.
template <typename Child>
class Family final : public detail::FamilyBase {
public:
    Family(std::string name, std::string help, std::vector<std::string> label_names,
           std::vector<double> bounds = {});

    // The child for these label values (one per label name, in order), created on first use.
    // A wrong number of values is a programming error: std::invalid_argument.
    Child& with(const std::vector<std::string>& label_values);
    Child& with(std::initializer_list<std::string_view> label_values);
    // The only child of a family without labels.
    Child& get() { return with(std::vector<std::string>{}); }

    const std::vector<double>& bounds() const { return bounds_; }

    void render(std::string& out) const override;

private:
    std::vector<double> bounds_;  // histograms only
    mutable std::mutex mutex_;
    std::map<std::vector<std::string>, std::unique_ptr<Child>> children_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

class Registry {
public:
    Registry() = default;
    Registry(const Registry&) = delete;
    Registry& operator=(const Registry&) = delete;

    // Registers (or returns the already registered) family. Names must match
    // [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* without a leading "__"
    // (and not "le" for histograms). Re-registering a name with another type or other label
    // names throws std::invalid_argument.
    CounterFamily& counter(const std::string& name, const std::string& help,
                           std::vector<std::string> label_names = {});
    GaugeFamily& gauge(const std::string& name, const std::string& help,
                       std::vector<std::string> label_names = {});
    // `buckets`: strictly increasing finite upper bounds; +Inf is implicit.
    HistogramFamily& histogram(const std::string& name, const std::string& help,
                               std::vector<std::string> label_names,
                               std::vector<double> buckets = default_buckets());

    // The whole registry in text format 0.0.4, families sorted by name, children by label values.
    std::string expose() const;

private:
    template <typename Child>
    Family<Child>& add(const std::string& name, const std::string& help,
                       std::vector<std::string> label_names, MetricType type,
                       std::vector<double> bounds);

    mutable std::mutex mutex_;
    std::map<std::string, std::unique_ptr<detail::FamilyBase>> families_;
};

// The process-wide registry the daemons expose.
Registry& default_registry();

// Escapes a label value for the exposition (\\, \", \n).
std::string escape_label_value(std::string_view value);
// Formats a sample value: shortest round-trip decimal, +Inf, -Inf, NaN.
std::string format_value(double v);

}  // namespace helexa::metrics
