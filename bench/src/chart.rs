//! A hand-written SVG line chart of a [`Report`]: throughput (queries/s)
//! against concurrency, one panel per workload, one line per contender.
//! Concurrency is on a log scale.

use std::fmt::Write as _;

use super::report::Report;
use super::workload::Workload;

const PANEL_W: f64 = 460.0;
const PANEL_H: f64 = 300.0;
const MARGIN_L: f64 = 70.0;
const MARGIN_R: f64 = 20.0;
const MARGIN_T: f64 = 40.0;
const MARGIN_B: f64 = 45.0;
const COLUMNS: usize = 2;
const LEGEND_H: f64 = 60.0;
/// Colours for contenders, in order of appearance.
const PALETTE: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// A "nice" axis maximum at or above `x`: 1, 2 or 5 times a power of ten.
fn nice_ceiling(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(x.log10().floor());
    for step in [1.0, 2.0, 5.0, 10.0] {
        if step * magnitude >= x {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn thousands(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.0}k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

/// The chart as an SVG document.
pub fn svg(report: &Report) -> String {
    let contenders = report.contender_order();
    let mut workloads: Vec<Workload> = report.rows.iter().map(|m| m.workload).collect();
    workloads.sort();
    workloads.dedup();
    let mut levels: Vec<usize> = report.rows.iter().map(|m| m.level).collect();
    levels.sort_unstable();
    levels.dedup();

    let columns = COLUMNS.min(workloads.len().max(1));
    let rows = workloads.len().div_ceil(columns).max(1);
    let width = columns as f64 * PANEL_W;
    let height = rows as f64 * PANEL_H + LEGEND_H;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);

    let (min_level, max_level) = (
        *levels.first().unwrap_or(&1) as f64,
        *levels.last().unwrap_or(&1) as f64,
    );
    let log_span = (max_level.log2() - min_level.log2()).max(1.0);
    for (panel, workload) in workloads.iter().enumerate() {
        let x0 = (panel % columns) as f64 * PANEL_W + MARGIN_L;
        let y0 = (panel / columns) as f64 * PANEL_H + MARGIN_T;
        let plot_w = PANEL_W - MARGIN_L - MARGIN_R;
        let plot_h = PANEL_H - MARGIN_T - MARGIN_B;
        let peak = report
            .rows
            .iter()
            .filter(|m| m.workload == *workload)
            .map(|m| m.qps())
            .fold(0.0, f64::max);
        let y_max = nice_ceiling(peak * 1.05);
        let x_of =
            |level: usize| x0 + (((level as f64).log2() - min_level.log2()) / log_span) * plot_w;
        let y_of = |qps: f64| y0 + plot_h - (qps / y_max) * plot_h;

        let _ = writeln!(
            out,
            r#"<text x="{}" y="{}" font-size="14" font-weight="bold">{} — queries/s by concurrent tasks</text>"#,
            x0,
            y0 - 15.0,
            workload
        );
        // Grid and y labels.
        for i in 0..=5 {
            let value = y_max * i as f64 / 5.0;
            let y = y_of(value);
            let _ = writeln!(
                out,
                "<line x1=\"{x0}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                x0 + plot_w,
                x0 - 6.0,
                y + 4.0,
                thousands(value)
            );
        }
        // X ticks at the measured levels.
        for &level in &levels {
            let x = x_of(level);
            let _ = writeln!(
                out,
                "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#999\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{level}</text>",
                y0 + plot_h,
                y0 + plot_h + 5.0,
                y0 + plot_h + 18.0
            );
        }
        let _ = writeln!(
            out,
            r##"<rect x="{x0}" y="{y0}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#333"/>"##
        );
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#555">concurrent tasks (log scale)</text>"##,
            x0 + plot_w / 2.0,
            y0 + plot_h + 36.0
        );
        // One line per contender.
        for (index, contender) in contenders.iter().enumerate() {
            let colour = PALETTE[index % PALETTE.len()];
            let mut points: Vec<(usize, f64)> = report
                .rows
                .iter()
                .filter(|m| m.workload == *workload && m.contender == *contender)
                .map(|m| (m.level, m.qps()))
                .collect();
            points.sort_by_key(|p| p.0);
            if points.is_empty() {
                continue;
            }
            let path: Vec<String> = points
                .iter()
                .map(|&(level, qps)| format!("{:.1},{:.1}", x_of(level), y_of(qps)))
                .collect();
            let _ = writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                path.join(" ")
            );
            for &(level, qps) in &points {
                let _ = writeln!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"><title>{} {} x{}: {:.0} queries/s</title></circle>"#,
                    x_of(level),
                    y_of(qps),
                    escape(contender),
                    workload,
                    level,
                    qps
                );
            }
        }
    }
    // Legend.
    let legend_y = rows as f64 * PANEL_H + 20.0;
    let per_row = 5;
    for (index, contender) in contenders.iter().enumerate() {
        let colour = PALETTE[index % PALETTE.len()];
        let x = 20.0 + (index % per_row) as f64 * (width - 40.0) / per_row as f64;
        let y = legend_y + (index / per_row) as f64 * 20.0;
        let _ = writeln!(
            out,
            r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            x + 24.0,
            x + 30.0,
            y + 4.0,
            escape(contender)
        );
    }
    out.push_str("</svg>\n");
    out
}
