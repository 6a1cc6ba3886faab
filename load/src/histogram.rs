//! Latency histograms for the HTML report: goose's report charts latency over time and lists
//! percentiles, but has no distribution chart, and a bimodal operation (cache hit / miss, fast
//! path / queueing) only shows as one. The histogram is drawn as inline SVG (no script, no
//! network: the report opens from disk) and appended to goose's report file.
//!
//! Bins are logarithmic, four per doubling from 50 µs: latencies span three or four orders of
//! magnitude, and equal-width bins would put nearly everything in the first one.

use std::fmt::Write as _;
use std::path::Path;

/// The lower edge of the first bin, in µs (anything faster is counted there).
const FIRST_EDGE_US: f64 = 50.0;
/// Bins per doubling of latency.
const BINS_PER_OCTAVE: f64 = 4.0;
/// Chart geometry, in SVG units.
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
const MARGIN_BOTTOM: f64 = 28.0;

/// One bin: requests whose latency is in `[from_us, to_us)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bin {
    /// Lower edge, µs.
    pub from_us: f64,
    /// Upper edge, µs.
    pub to_us: f64,
    /// Requests in the bin.
    pub count: usize,
}

fn bin_index(us: u64) -> usize {
    let ratio = (us as f64).max(FIRST_EDGE_US) / FIRST_EDGE_US;
    (ratio.log2() * BINS_PER_OCTAVE).floor() as usize
}

fn edge(index: usize) -> f64 {
    FIRST_EDGE_US * (index as f64 / BINS_PER_OCTAVE).exp2()
}

/// Goose's (bucket in µs, count) pairs, regrouped into logarithmic bins from the fastest to the
/// slowest non-empty bin (empty bins in between are kept: gaps are information).
pub fn bins(buckets: &[(u64, usize)]) -> Vec<Bin> {
    let filled: Vec<(usize, usize)> = buckets
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(us, n)| (bin_index(*us), *n))
        .collect();
    let (Some(low), Some(high)) = (
        filled.iter().map(|(i, _)| *i).min(),
        filled.iter().map(|(i, _)| *i).max(),
    ) else {
        return Vec::new();
    };
    let mut out: Vec<Bin> = (low..=high)
        .map(|i| Bin {
            from_us: edge(i),
            to_us: edge(i + 1),
            count: 0,
        })
        .collect();
    for (i, n) in filled {
        out[i - low].count += n;
    }
    out
}

fn label(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One operation's histogram as an SVG element (bars, a few edge labels, a tooltip per bar).
pub fn svg(name: &str, bins: &[Bin]) -> String {
    let mut out = String::new();
    let tallest = bins.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64;
    let total: usize = bins.iter().map(|b| b.count).sum();
    let bar = WIDTH / bins.len().max(1) as f64;
    let plot = HEIGHT - MARGIN_BOTTOM;
    let _ = write!(
        out,
        r#"<figure class="agora-histogram"><figcaption>{} — {} requests</figcaption><svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="latency histogram of {}">"#,
        escape(name),
        total,
        escape(name)
    );
    let every = (bins.len() / 8).max(1);
    for (i, b) in bins.iter().enumerate() {
        let h = plot * b.count as f64 / tallest;
        let x = i as f64 * bar;
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#3b82f6"><title>{} – {}: {}</title></rect>"##,
            plot - h,
            (bar - 1.0).max(1.0),
            label(b.from_us),
            label(b.to_us),
            b.count
        );
        if i % every == 0 {
            let _ = write!(
                out,
                r#"<text x="{x:.1}" y="{:.1}" font-size="10">{}</text>"#,
                HEIGHT - 10.0,
                label(b.from_us)
            );
        }
    }
    out.push_str("</svg></figure>\n");
    out
}

/// The histograms section for `operations` (name, goose buckets).
pub fn section(operations: &[(String, Vec<(u64, usize)>)]) -> String {
    let mut out = String::from(
        "<div class=\"agora-histograms\"><h2>Latency histograms</h2>\n<p>Successful and failed requests per latency bin (logarithmic: four bins per doubling).</p>\n",
    );
    for (name, buckets) in operations {
        out.push_str(&svg(name, &bins(buckets)));
    }
    out.push_str("</div>\n");
    out
}

/// Inserts `section` into the goose HTML report at `path`, before `</body>` (appended when the
/// report has none).
pub fn append_to_report(path: &Path, section: &str) -> std::io::Result<()> {
    let report = std::fs::read_to_string(path)?;
    let updated = match report.rfind("</body>") {
        Some(at) => format!("{}{}{}", &report[..at], section, &report[at..]),
        None => format!("{report}{section}"),
    };
    std::fs::write(path, updated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_keep_every_request_and_order_by_latency() {
        let buckets = [(10, 3), (1_000, 50), (1_100, 5), (40_000, 2), (7_000, 0)];
        let bins = bins(&buckets);
        assert_eq!(bins.iter().map(|b| b.count).sum::<usize>(), 60);
        assert!(bins.windows(2).all(|w| w[0].to_us <= w[1].from_us + 1e-9));
        // Sub-50 µs times land in the first bin; 1.0 and 1.1 ms share one.
        assert_eq!(bins[0].count, 3);
        let ms = bins
            .iter()
            .find(|b| b.from_us <= 1_000.0 && 1_100.0 < b.to_us)
            .map(|b| b.count);
        assert_eq!(ms, Some(55));
        assert_eq!(bins.last().map(|b| b.count), Some(2));
        assert!(super::bins(&[]).is_empty());
    }

    #[test]
    fn svg_has_one_bar_per_bin_and_escapes_names() {
        let bins = bins(&[(1_000, 1), (2_000, 1)]);
        let svg = svg("get_<feed>", &bins);
        assert_eq!(svg.matches("<rect").count(), bins.len());
        assert!(svg.contains("get_&lt;feed&gt;"));
    }

    #[test]
    fn section_goes_before_the_end_of_the_body() {
        let dir = std::env::temp_dir().join(format!("agora-hist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("report.html");
        std::fs::write(&path, "<html><body><p>goose</p></body></html>").unwrap();
        append_to_report(&path, "<div>H</div>").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "<html><body><p>goose</p><div>H</div></body></html>");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
