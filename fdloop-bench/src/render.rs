//! Printing a [`Report`]: a Markdown table per case (with ratios to the
//! best peer and to the floor), the compact summary of fdloop against
//! both, one SVG chart per group, and the files the report writes — JSON
//! records (`serde_json`), the Markdown of every table, the charts.
//!
//! Nothing here measures or computes a figure: the statistics are
//! [`record`](crate::record)'s.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use crate::record::{Better, Record, Report, Role};

impl Report {
    /// The Markdown table of one case: the primary metric's median and
    /// min–max, its cost as a multiple of the best peer's (the ratio of
    /// the medians, then the median of the rounds' ratios, "paired": see
    /// [`Record::paired_cost_over`]) and of the floor's (under 1: cheaper),
    /// then the other metrics' medians.
    pub fn table(&self, group: &str, case: &str) -> String {
        let prim = self.primary(group, case);
        let Some(first) = prim.first() else {
            return String::new();
        };
        let extras = self.extra_metrics(group, case);
        let best = self.best_peer(group, case);
        let floor = self.floor(group, case);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "#### {group}: {case}\n\n{} in {} ({}; median of {} reps). \
             × columns: cost as a multiple of the best peer's{} and of the floor's{} (under 1 = cheaper).\n",
            first.metric,
            first.unit,
            direction(first.better),
            first.reps,
            best.map_or(String::new(), |b| format!(" ({})", b.contender)),
            floor.map_or(String::new(), |f| format!(" ({})", f.contender)),
        );
        out.push_str("| contender | median | min–max | × best peer | paired | × floor |");
        for e in &extras {
            let _ = write!(out, " {e} |");
        }
        out.push_str("\n|---|---:|---:|---:|---:|---:|");
        out.push_str(&"---:|".repeat(extras.len()));
        out.push('\n');
        for r in &prim {
            let name = match r.role {
                Role::Fdloop => format!("**{}**", r.contender),
                Role::Floor => format!("{} (floor)", r.contender),
                Role::Peer => r.contender.clone(),
                Role::Reference => format!("{} (reference)", r.contender),
            };
            let _ = write!(
                out,
                "| {name} | {} | {}–{} | {} | {} | {} |",
                fmt_value(r.median, &r.unit),
                fmt_value(r.min, &r.unit),
                fmt_value(r.max, &r.unit),
                fmt_ratio(r, best),
                fmt_paired(r, best),
                fmt_ratio(r, floor),
            );
            for e in &extras {
                let v = self
                    .of_case(group, case)
                    .find(|x| x.metric == *e && x.contender == r.contender);
                let _ = write!(
                    out,
                    " {} |",
                    v.map_or("–".into(), |v| fmt_value(v.median, &v.unit))
                );
            }
            out.push('\n');
        }
        out
    }

    /// Every record as a JSON array, one object per line (the fields of
    /// [`Record`], in order).
    pub fn to_json(&self) -> String {
        let lines: Vec<String> = self
            .records
            .iter()
            .map(|r| {
                let obj = serde_json::to_string(r);
                format!(
                    "  {}",
                    obj.expect("a Record (strings, numbers) always serialises")
                )
            })
            .collect();
        format!("[\n{}\n]\n", lines.join(",\n"))
    }

    /// Reads back a JSON array of records (what [`to_json`](Report::to_json)
    /// writes, however laid out).
    ///
    /// # Errors
    ///
    /// serde_json's message: where the text is malformed or a field is
    /// missing or of the wrong type.
    pub fn from_json(text: &str) -> Result<Report, String> {
        serde_json::from_str(text)
            .map(|records| Report { records })
            .map_err(|e| e.to_string())
    }

    /// One SVG chart for `group`: a panel per case, a horizontal bar per
    /// contender (the primary metric's median, with a min–max whisker),
    /// fdloop in orange, the floor in grey, peers in blue.
    pub fn svg(&self, group: &str) -> String {
        const W: f64 = 1000.0;
        const LABEL: f64 = 420.0;
        const BAR: f64 = 18.0;
        const GAP: f64 = 6.0;
        const HEAD: f64 = 34.0;
        let mut body = String::new();
        let mut y = 40.0;
        for case in self.cases(group) {
            let prim = self.primary(group, case);
            let Some(first) = prim.first() else { continue };
            let top = prim.iter().map(|r| r.max.max(r.median)).fold(0.0, f64::max);
            let low = prim
                .iter()
                .map(|r| r.min.min(r.median))
                .filter(|&v| v > 0.0)
                .fold(f64::INFINITY, f64::min);
            // Spreads of more than 30× get a log scale, or the small bars
            // would vanish.
            let log = top > 0.0 && low.is_finite() && top / low > 30.0;
            let span = W - LABEL - 110.0;
            let x_of = |v: f64| -> f64 {
                if log {
                    let lo = (low / 2.0).log10();
                    let f = (v.max(low / 2.0).log10() - lo) / (top.log10() - lo);
                    LABEL + f * span
                } else if top > 0.0 {
                    LABEL + v.max(0.0) / top * span
                } else {
                    LABEL
                }
            };
            let _ = writeln!(
                body,
                "<text x=\"10\" y=\"{:.0}\" font-weight=\"bold\">{}: {} ({}, {}{})</text>",
                y + 16.0,
                xml(case),
                xml(&first.metric),
                xml(&first.unit),
                direction(first.better),
                if log { "; log scale" } else { "" },
            );
            y += HEAD;
            for r in &prim {
                let colour = match r.role {
                    Role::Fdloop => "#e8731a",
                    Role::Floor => "#8c8c8c",
                    Role::Peer => "#3a78c2",
                    Role::Reference => "#b5b5b5",
                };
                let w = (x_of(r.median) - LABEL).max(1.0);
                let _ = writeln!(
                    body,
                    "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">{}</text>\
                     <rect x=\"{LABEL:.0}\" y=\"{y:.0}\" width=\"{w:.1}\" height=\"{BAR:.0}\" fill=\"{colour}\"/>\
                     <line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.0}\" y2=\"{:.0}\" stroke=\"black\"/>\
                     <text x=\"{:.1}\" y=\"{:.0}\">{}</text>",
                    LABEL - 8.0,
                    y + 14.0,
                    xml(&short(&r.contender, 62)),
                    x_of(r.min),
                    x_of(r.max),
                    y + BAR / 2.0,
                    y + BAR / 2.0,
                    x_of(r.max.max(r.median)) + 6.0,
                    y + 14.0,
                    xml(&fmt_value(r.median, &r.unit)),
                );
                y += BAR + GAP;
            }
            y += 14.0;
        }
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W:.0}\" height=\"{:.0}\" \
             font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"10\" y=\"22\" font-size=\"16\" font-weight=\"bold\">fdloop report: {}</text>\n\
             <text x=\"{:.0}\" y=\"22\" font-size=\"11\"><tspan fill=\"#e8731a\">■ fdloop</tspan>  \
             <tspan fill=\"#3a78c2\">■ peers</tspan>  <tspan fill=\"#8c8c8c\">■ floor</tspan>  \
             bar: median, whisker: min–max</text>\n\
             {body}</svg>\n",
            y + 10.0,
            xml(group),
            W - 420.0,
        )
    }

    /// The Markdown file of a run: a note that it is generated from
    /// `source`, the [`summary`], then every case's table, group by group.
    pub fn markdown(&self, source: &str) -> String {
        let mut out = format!(
            "# fdloop head-to-head report: {source}\n\n\
             Generated by the report (`--json`, or `--redraw` of the JSON file) from \
             `{source}`; do not edit by hand.\n\n\
             ## Summary: fdloop against the best peer and the floor\n\n{}\n",
            summary(&[self])
        );
        for g in self.groups() {
            let _ = writeln!(out, "## {g}\n");
            for case in self.cases(g) {
                let _ = writeln!(out, "{}", self.table(g, case));
            }
        }
        out
    }
}

/// The compact summary of one or more runs of the report: a row per fdloop
/// contender of every headline case (cases and contenders as in the first
/// run; [`detail`](Record::detail) cases left out),
/// with its median, the case's best peer and that peer's median, and
/// fdloop's cost as a multiple of the best peer's (ratio of medians, and
/// paired by round) and of the floor's (under 1 = cheaper). With several
/// runs each cell holds one value per run, separated by ` / `.
///
/// # Examples
///
/// ```
/// use fdloop_bench::record::{Better, Report, Role};
/// let mut r = Report::default();
/// r.add("g", "c", "fd", Role::Fdloop, "t", "ns", Better::Lower, &[150.0]);
/// r.add("g", "c", "p", Role::Peer, "t", "ns", Better::Lower, &[300.0]);
/// let s = fdloop_bench::render::summary(&[&r, &r]);
/// assert!(s.contains("| g | c | fd | 150 ns / 150 ns | p | 300 ns / 300 ns | 0.50 / 0.50 | – / – | – / – |"), "{s}");
/// ```
pub fn summary(runs: &[&Report]) -> String {
    let mut out = String::from(
        "| group | case | fdloop | median | best peer | its median | × best peer | paired | × floor |\n\
         |---|---|---|---:|---|---:|---:|---:|---:|\n",
    );
    let Some(first) = runs.first() else {
        return out;
    };
    for g in first.groups() {
        for case in first.cases(g) {
            let fdloop = first.primary(g, case);
            for fd in fdloop
                .iter()
                .filter(|r| r.role == Role::Fdloop && !r.detail)
            {
                // One column's values over the runs, ` / `-separated.
                let col = |cell: &dyn Fn(&Report, &Record) -> String| -> String {
                    let v: Vec<String> = runs
                        .iter()
                        .map(|run| {
                            run.primary(g, case)
                                .into_iter()
                                .find(|r| r.contender == fd.contender)
                                .map_or("–".into(), |r| cell(run, r))
                        })
                        .collect();
                    v.join(" / ")
                };
                let mut peers: Vec<&str> = Vec::new();
                for b in runs.iter().filter_map(|run| run.best_peer(g, case)) {
                    if !peers.contains(&b.contender.as_str()) {
                        peers.push(&b.contender);
                    }
                }
                let _ = writeln!(
                    out,
                    "| {g} | {case} | {} | {} | {} | {} | {} | {} | {} |",
                    fd.contender,
                    col(&|_, r| fmt_value(r.median, &r.unit)),
                    if peers.is_empty() {
                        "–".into()
                    } else {
                        peers.join(", ")
                    },
                    col(&|run, _| run
                        .best_peer(g, case)
                        .map_or("–".into(), |b| fmt_value(b.median, &b.unit))),
                    col(&|run, r| fmt_ratio(r, run.best_peer(g, case))),
                    col(&|run, r| fmt_paired(r, run.best_peer(g, case))),
                    col(&|run, r| fmt_ratio(r, run.floor(g, case))),
                );
            }
        }
    }
    out
}

/// What `--json PATH` writes: PATH itself (if `json`), the Markdown of
/// every table beside it (PATH with extension `.md`) and one chart per
/// group (`<stem>-<group>.svg`). Returns the paths written.
///
/// # Errors
///
/// Creating the directory or writing a file failing, with the path.
pub fn write_files(report: &Report, path: &Path, json: bool) -> io::Result<Vec<PathBuf>> {
    let with_path =
        |p: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", p.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| with_path(dir, e))?;
    }
    let stem = path
        .file_stem()
        .map_or_else(|| "report".into(), |s| s.to_string_lossy().into_owned());
    let source = path.file_name().map_or_else(
        || "report.json".into(),
        |s| s.to_string_lossy().into_owned(),
    );
    let mut files = Vec::new();
    if json {
        files.push((path.to_path_buf(), report.to_json()));
    }
    files.push((path.with_extension("md"), report.markdown(&source)));
    for g in report.groups() {
        files.push((
            path.with_file_name(format!("{stem}-{g}.svg")),
            report.svg(g),
        ));
    }
    for (p, text) in &files {
        std::fs::write(p, text).map_err(|e| with_path(p, e))?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

fn direction(b: Better) -> &'static str {
    match b {
        Better::Lower => "lower is better",
        Better::Higher => "higher is better",
    }
}

/// `r`'s cost over `reference`'s, paired by round, to two decimals, `–` if
/// there is none (fewer than two reps, or the reference itself).
fn fmt_paired(r: &Record, reference: Option<&Record>) -> String {
    reference
        .filter(|x| !std::ptr::eq(*x, r))
        .and_then(|x| r.paired_cost_over(x))
        .map_or("–".into(), |c| format!("{c:.2}"))
}

/// `r`'s cost over `reference`'s to two decimals, `–` if there is none.
fn fmt_ratio(r: &Record, reference: Option<&Record>) -> String {
    reference
        .and_then(|x| r.cost_over(x))
        .map_or("–".into(), |c| format!("{c:.2}"))
}

/// Formats nanoseconds as `850 ns`, `12.3 ns`, `14.2 µs` or `1.25 ms`.
///
/// # Examples
///
/// ```
/// use fdloop_bench::render::fmt_ns;
/// assert_eq!(fmt_ns(12.34), "12.3 ns");
/// assert_eq!(fmt_ns(850.0), "850 ns");
/// assert_eq!(fmt_ns(14_200.0), "14.2 µs");
/// assert_eq!(fmt_ns(1_250_000.0), "1.25 ms");
/// assert_eq!(fmt_ns(-1_250_000.0), "-1.25 ms");
/// ```
pub fn fmt_ns(ns: f64) -> String {
    if ns < 0.0 {
        return format!("-{}", fmt_ns(-ns));
    }
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 10_000.0 {
        format!("{:.1} µs", ns / 1000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1000.0)
    } else if ns >= 100.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{ns:.1} ns")
    }
}

/// A value with its unit: times in ns get [`fmt_ns`], other units three
/// significant digits or so.
///
/// # Examples
///
/// ```
/// use fdloop_bench::render::fmt_value;
/// assert_eq!(fmt_value(1500.0, "ns"), "1.50 µs");
/// assert_eq!(fmt_value(35.71, "M msg/s"), "35.7 M msg/s");
/// assert_eq!(fmt_value(0.0042, "calls"), "0.0042 calls");
/// ```
pub fn fmt_value(v: f64, unit: &str) -> String {
    if unit == "ns" {
        return fmt_ns(v);
    }
    let a = v.abs();
    let num = if a == 0.0 {
        "0".to_string()
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.01 {
        format!("{v:.3}")
    } else if a >= 0.001 {
        format!("{v:.4}")
    } else {
        format!("{v:.2e}")
    };
    if unit.is_empty() {
        num
    } else {
        format!("{num} {unit}")
    }
}

/// `s` cut to `max` characters, with an ellipsis if cut.
fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tests::sample;

    #[test]
    fn table_has_ratios_and_extra_columns() {
        let t = sample().table("g", "c");
        // fd: 120 / best peer 200 = 0.60; / floor 100 = 1.20; syscalls 1.00.
        assert!(
            t.contains("| **fd** | 120 ns | 120 ns–120 ns | 0.60 | – | 1.20 | 1.00 calls |"),
            "{t}"
        );
        assert!(
            t.contains("| p2 | 200 ns | 200 ns–200 ns | 1.00 | – | 2.00 | – |"),
            "{t}"
        );
        assert!(
            t.contains("| raw (floor) | 100 ns | 90.0 ns–110 ns | 0.50 | – | 1.00 | – |"),
            "{t}"
        );
        assert!(
            t.contains("best peer's (p2) and of the floor's (raw) (under 1"),
            "{t}"
        );
        // A rate: 30 M/s against the best peer's 20 costs 0.67 of its time.
        let t = sample().table("g", "tp");
        assert!(
            t.contains("best peer's (p) and of the floor's (under 1"),
            "{t}"
        );
        assert!(
            t.contains("| **fd** | 30.0 M msg/s | 30.0 M msg/s–30.0 M msg/s | 0.67 | – | – |"),
            "{t}"
        );
        // Two rounds each: the paired column has the median round ratio
        // (the best peer's own row has none).
        let mut r = Report::default();
        r.add(
            "g",
            "e",
            "fd",
            Role::Fdloop,
            "t",
            "ns",
            Better::Lower,
            &[90.0, 300.0],
        );
        r.add(
            "g",
            "e",
            "p",
            Role::Peer,
            "t",
            "ns",
            Better::Lower,
            &[100.0, 200.0],
        );
        let t = r.table("g", "e");
        assert!(
            t.contains("| **fd** | 195 ns | 90.0 ns–300 ns | 1.30 | 1.20 | – |"),
            "{t}"
        );
        assert!(
            t.contains("| p | 150 ns | 100 ns–200 ns | 1.00 | – | – |"),
            "{t}"
        );
        assert!(summary(&[&r]).contains("| 1.30 | 1.20 | – |"));
    }

    #[test]
    fn summary_has_a_row_per_fdloop_contender_and_run() {
        let r = sample();
        let s = summary(&[&r]);
        assert!(
            s.contains("| g | c | fd | 120 ns | p2 | 200 ns | 0.60 | – | 1.20 |"),
            "{s}"
        );
        assert!(
            s.contains("| g | tp | fd | 30.0 M msg/s | p | 20.0 M msg/s | 0.67 | – | – |"),
            "{s}"
        );
        assert_eq!(s.lines().count(), 4, "{s}");
        let other = Report {
            records: r
                .records
                .iter()
                .filter(|x| x.case == "c")
                .cloned()
                .collect(),
        };
        let s = summary(&[&r, &other]);
        assert!(s.contains("| g | c | fd | 120 ns / 120 ns | p2 |"), "{s}");
        assert!(s.contains("| 0.67 / – | – / – | – / – |"), "{s}");
    }

    #[test]
    fn detail_cases_are_tabled_but_left_out_of_the_summary() {
        let mut r = sample();
        r.mark_detail("g", "tp");
        let s = summary(&[&r]);
        assert!(
            s.contains("| g | c | fd |") && !s.contains("| g | tp |"),
            "{s}"
        );
        assert!(r.table("g", "tp").contains("| **fd** | 30.0 M msg/s |"));
        // The flag survives the JSON; records without it read as headline.
        let j = r.to_json();
        assert_eq!(j.matches("\"detail\":true").count(), 2, "{j}");
        assert!(!j.contains("\"detail\":false"), "{j}");
        assert_eq!(Report::from_json(&j).unwrap().records, r.records);
    }

    #[test]
    fn json_has_every_record_and_field() {
        let j = sample().to_json();
        assert_eq!(j.matches("\"group\"").count(), 7);
        assert_eq!(j.lines().count(), 9, "{j}");
        assert!(j.contains(
            "{\"group\":\"g\",\"case\":\"c\",\"contender\":\"raw\",\"metric\":\"t\",\"unit\":\"ns\",\
             \"median\":100.0,\"min\":90.0,\"max\":110.0,\"reps\":3,\"role\":\"floor\",\"better\":\"lower\",\
             \"samples\":[100.0,90.0,110.0]}"
        ), "{j}");
    }

    #[test]
    fn json_reads_back_what_it_wrote() {
        let mut r = sample();
        let odd = "q\"uo\\te\n\u{1}";
        r.add("g", odd, "x", Role::Peer, "t", "ns", Better::Lower, &[1.5]);
        let back = Report::from_json(&r.to_json()).unwrap();
        assert_eq!(back.records, r.records);
        assert!(Report::from_json("[\n  {\"group\":\"g\"}\n]").is_err());
        assert!(Report::from_json("{\"group\":\"g").is_err());
        // The hand-written writer before serde: integers without ".0".
        let old = "[\n  {\"group\":\"g\",\"case\":\"c\",\"contender\":\"x\",\"metric\":\"t\",\
                   \"unit\":\"\",\"median\":1,\"min\":1,\"max\":2.5,\"reps\":5,\"role\":\"peer\",\
                   \"better\":\"higher\"}\n]\n";
        let back = Report::from_json(old).unwrap();
        assert_eq!((back.records[0].max, back.records[0].reps), (2.5, 5));
        // NaN is written as null, and reads back as NaN (in the samples too).
        r.records[0].median = f64::NAN;
        r.records[0].samples[1] = f64::NAN;
        let back = Report::from_json(&r.to_json()).unwrap();
        assert!(back.records[0].median.is_nan());
        assert!(back.records[0].samples[1].is_nan());
        assert_eq!(back.records[0].samples[0], 100.0);
    }

    /// Lateness is signed: a contender whose timers fire early has a
    /// negative median. It gets no ratio (a ratio of a negative time means
    /// nothing), can't be the best peer, draws as an empty bar, and survives
    /// the JSON round trip.
    #[test]
    fn a_negative_median_is_shown_but_never_ratioed() {
        let mut r = Report::default();
        let mut add = |name: &str, role, v: &[f64]| {
            r.add(
                "g",
                "late",
                name,
                role,
                "p50 lateness",
                "ns",
                Better::Lower,
                v,
            )
        };
        add("tfd", Role::Floor, &[40e3]);
        add("fd", Role::Fdloop, &[44e3]);
        add("early", Role::Peer, &[-250e3, 90e3, -300e3]);
        add("slow", Role::Peer, &[88e3]);
        assert_eq!(
            r.best_peer("g", "late").map(|b| b.contender.as_str()),
            Some("slow")
        );
        let t = r.table("g", "late");
        assert!(
            t.contains("| early | -250.0 µs | -300.0 µs–90.0 µs | – | – | – |"),
            "{t}"
        );
        assert!(
            t.contains("| **fd** | 44.0 µs | 44.0 µs–44.0 µs | 0.50 | – | 1.10 |"),
            "{t}"
        );
        let svg = r.svg("g");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert!(!svg.contains("width=\"-"), "{svg}");
        let back = Report::from_json(&r.to_json()).unwrap();
        assert_eq!(back.records, r.records);
    }

    #[test]
    fn svg_has_a_bar_per_contender_and_escapes() {
        let mut r = sample();
        r.add(
            "h",
            "x<y",
            "a&b",
            Role::Peer,
            "t",
            "ns",
            Better::Lower,
            &[1.0],
        );
        let s = r.svg("g");
        assert_eq!(s.matches("<rect x=").count(), 6);
        assert!(r.svg("h").contains("a&amp;b") && r.svg("h").contains("x&lt;y"));
    }

    #[test]
    fn markdown_and_files() {
        let r = sample();
        let md = r.markdown("r.json");
        assert!(md.contains("do not edit by hand") && md.contains("## g\n\n#### g: c"));
        let dir = std::env::temp_dir().join(format!("fdloop-render-{}", std::process::id()));
        let files = write_files(&r, &dir.join("sub/r.json"), false).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["r.md", "r-g.svg"]);
        assert_eq!(std::fs::read_to_string(&files[0]).unwrap(), md);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn values_format_by_unit() {
        assert_eq!(fmt_value(850.0, "ns"), "850 ns");
        assert_eq!(fmt_value(1.234, ""), "1.23");
        assert_eq!(fmt_value(0.0042, "calls"), "0.0042 calls");
        assert_eq!(fmt_value(0.0001, "calls"), "1.00e-4 calls");
        assert_eq!(fmt_value(1234.0, "µs"), "1234 µs");
    }
}
