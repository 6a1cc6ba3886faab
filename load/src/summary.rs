//! Per-operation figures from goose's metrics: requests, failures, throughput, p50/p95/p99/max
//! (from goose's microsecond buckets), and throughput as a ratio of a baseline run.

use std::collections::BTreeMap;

use goose::metrics::{GooseMetrics, GooseRequestMetricAggregate};

/// One operation's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Requests answered successfully.
    pub ok: usize,
    /// Requests that failed.
    pub failed: usize,
    /// Successful requests per second over the run.
    pub per_second: f64,
    /// Percentiles and maximum, in milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// A run's figures by operation name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Operations by name.
    pub operations: BTreeMap<String, Operation>,
    /// The run's length in seconds.
    pub seconds: usize,
}

/// The value at quantile `q` of a histogram of (bucket in µs, count), in milliseconds.
pub fn quantile(buckets: &[(u64, usize)], q: f64) -> f64 {
    let total: usize = buckets.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return 0.0;
    }
    let rank = (q * total as f64).ceil().max(1.0) as usize;
    let mut seen = 0;
    for (us, n) in buckets {
        seen += n;
        if seen >= rank {
            return *us as f64 / 1000.0;
        }
    }
    buckets.last().map_or(0.0, |(us, _)| *us as f64 / 1000.0)
}

/// One operation's latencies as goose keeps them: (bucket in µs, count), fastest first.
fn buckets_of(aggregate: &GooseRequestMetricAggregate) -> Vec<(u64, usize)> {
    let mut buckets: Vec<(u64, usize)> = aggregate
        .raw_data
        .times_us
        .iter()
        .map(|(b, n)| (*b, *n))
        .collect();
    buckets.sort_unstable();
    buckets
}

/// Every operation's latency buckets, by operation name.
pub fn latency_buckets(metrics: &GooseMetrics) -> Vec<(String, Vec<(u64, usize)>)> {
    let mut out: Vec<(String, Vec<(u64, usize)>)> = metrics
        .requests
        .values()
        .map(|aggregate| (aggregate.path.clone(), buckets_of(aggregate)))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

impl Summary {
    /// The figures of a finished goose run.
    pub fn of(metrics: &GooseMetrics) -> Summary {
        let seconds = metrics.duration.max(1);
        let mut operations = BTreeMap::new();
        for aggregate in metrics.requests.values() {
            let buckets = buckets_of(aggregate);
            let timing = &aggregate.raw_data;
            operations.insert(
                aggregate.path.clone(),
                Operation {
                    ok: aggregate.success_count,
                    failed: aggregate.fail_count,
                    per_second: aggregate.success_count as f64 / seconds as f64,
                    p50_ms: quantile(&buckets, 0.50),
                    p95_ms: quantile(&buckets, 0.95),
                    p99_ms: quantile(&buckets, 0.99),
                    max_ms: timing.maximum_time_us as f64 / 1000.0,
                },
            );
        }
        Summary {
            operations,
            seconds,
        }
    }

    /// Failed requests of every operation.
    pub fn failures(&self) -> usize {
        self.operations.values().map(|o| o.failed).sum()
    }

    /// The table, with each operation's throughput over the baseline's total when given.
    pub fn render(&self, baseline: Option<&Summary>) -> String {
        let base_rate: Option<f64> =
            baseline.map(|b| b.operations.values().map(|o| o.per_second).sum::<f64>());
        let mut out = String::new();
        if let (Some(b), Some(rate)) = (baseline, base_rate) {
            out.push_str(&format!(
                "baseline: {:.0} requests/s over {} s ({})\n",
                rate,
                b.seconds,
                b.operations.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        out.push_str(&format!(
            "{:<28} {:>8} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8}{}\n",
            "operation",
            "ok",
            "failed",
            "req/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            if base_rate.is_some() { "   ratio" } else { "" }
        ));
        for (name, o) in &self.operations {
            let ratio = base_rate
                .filter(|r| *r > 0.0)
                .map(|r| format!(" {:>7.2}", o.per_second / r))
                .unwrap_or_default();
            out.push_str(&format!(
                "{:<28} {:>8} {:>6} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2}{}\n",
                name, o.ok, o.failed, o.per_second, o.p50_ms, o.p95_ms, o.p99_ms, o.max_ms, ratio
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_walk_the_buckets() {
        let buckets = [(1_000, 50), (2_000, 45), (10_000, 4), (50_000, 1)];
        assert_eq!(quantile(&buckets, 0.50), 1.0);
        assert_eq!(quantile(&buckets, 0.95), 2.0);
        assert_eq!(quantile(&buckets, 0.99), 10.0);
        assert_eq!(quantile(&buckets, 1.0), 50.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
    }

    #[test]
    fn ratios_divide_by_the_baseline_total() {
        let op = |per_second| Operation {
            ok: 1,
            failed: 0,
            per_second,
            p50_ms: 1.0,
            p95_ms: 1.0,
            p99_ms: 1.0,
            max_ms: 1.0,
        };
        let baseline = Summary {
            operations: BTreeMap::from([("get_healthz".to_owned(), op(1000.0))]),
            seconds: 10,
        };
        let run = Summary {
            operations: BTreeMap::from([("get_home_feed".to_owned(), op(600.0))]),
            seconds: 10,
        };
        let text = run.render(Some(&baseline));
        assert!(text.contains("0.60"), "{text}");
        assert!(text.starts_with("baseline: 1000 requests/s"), "{text}");
    }
}
