//! The figures of a report run and their three renderings: Markdown tables
//! (with ratios to the best peer and to the floor), JSON records, and one
//! SVG chart per group.
//!
//! A figure is a [`Record`]: one metric of one contender in one case of one
//! group, summarised over its repetitions. The first metric recorded for a
//! case is its *primary* metric (the one ratios and charts use); later
//! metrics of the same case (syscalls per operation, p99, …) become extra
//! columns.
//!
//! Nothing here measures anything.

use std::fmt::Write as _;

use crate::report::{fmt_ns, Summary};

/// What a contender is to the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The physical floor: the least any loop can do (a raw syscall loop).
    Floor,
    /// fdloop itself.
    Fdloop,
    /// A peer library (Rust or C).
    Peer,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Floor => "floor",
            Role::Fdloop => "fdloop",
            Role::Peer => "peer",
        }
    }
}

/// Which direction of a metric is good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Times, syscalls: less is better.
    Lower,
    /// Rates: more is better.
    Higher,
}

/// One metric of one contender in one case, over its repetitions.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The comparison group (`wake`, `channel`, `dispatch`, `timers`).
    pub group: String,
    /// The case inside the group (`N = 100`, `1 producer`, …).
    pub case: String,
    /// Who was measured.
    pub contender: String,
    /// What was measured (`time/event`, `throughput`, `syscalls/op`, …).
    pub metric: String,
    /// Its unit (`ns`, `M msg/s`, `calls`, …).
    pub unit: String,
    /// Median over the repetitions.
    pub median: f64,
    /// Smallest repetition.
    pub min: f64,
    /// Largest repetition.
    pub max: f64,
    /// How many repetitions.
    pub reps: usize,
    /// Floor, fdloop or peer.
    pub role: Role,
    /// Which direction is good.
    pub better: Better,
}

/// Every figure of a run, in the order recorded.
///
/// # Examples
///
/// ```
/// use fdloop_bench::record::{Better, Report, Role};
/// let mut r = Report::default();
/// r.add("g", "c", "floor", Role::Floor, "time/op", "ns", Better::Lower, &[100.0, 110.0]);
/// r.add("g", "c", "fdloop", Role::Fdloop, "time/op", "ns", Better::Lower, &[120.0]);
/// r.add("g", "c", "peer", Role::Peer, "time/op", "ns", Better::Lower, &[240.0]);
/// let t = r.table("g", "c");
/// assert!(t.contains("| **fdloop** | 120 ns | 120 ns–120 ns | 0.50 | 1.14 |"), "{t}");
/// assert!(r.to_json().starts_with("[\n  {\"group\":\"g\""));
/// assert!(r.svg("g").starts_with("<svg"));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The records, in the order added.
    pub records: Vec<Record>,
}

impl Report {
    /// Adds one metric of one contender, summarising `samples` (one value
    /// per repetition).
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        group: &str,
        case: &str,
        contender: &str,
        role: Role,
        metric: &str,
        unit: &str,
        better: Better,
        samples: &[f64],
    ) {
        let s = Summary::of(samples);
        self.records.push(Record {
            group: group.into(),
            case: case.into(),
            contender: contender.into(),
            metric: metric.into(),
            unit: unit.into(),
            median: s.median,
            min: s.min,
            max: s.max,
            reps: samples.len(),
            role,
            better,
        });
    }

    /// The groups, in the order first recorded.
    pub fn groups(&self) -> Vec<&str> {
        uniq(self.records.iter().map(|r| r.group.as_str()))
    }

    /// The cases of `group`, in the order first recorded.
    pub fn cases(&self, group: &str) -> Vec<&str> {
        uniq(
            self.records
                .iter()
                .filter(|r| r.group == group)
                .map(|r| r.case.as_str()),
        )
    }

    fn of_case<'a, 'k>(
        &'a self,
        group: &'k str,
        case: &'k str,
    ) -> impl Iterator<Item = &'a Record> + use<'a, 'k> {
        self.records
            .iter()
            .filter(move |r| r.group == group && r.case == case)
    }

    /// The primary-metric records of a case (one per contender, the first
    /// metric recorded for the case).
    pub fn primary(&self, group: &str, case: &str) -> Vec<&Record> {
        let Some(first) = self.of_case(group, case).next() else {
            return Vec::new();
        };
        let metric = first.metric.clone();
        self.of_case(group, case)
            .filter(|r| r.metric == metric)
            .collect()
    }

    /// `r`'s cost relative to `reference`'s, as a multiple of its time:
    /// above 1 is slower (for a rate, the inverse ratio).
    fn cost_ratio(r: &Record, reference: &Record) -> f64 {
        match r.better {
            Better::Lower => r.median / reference.median,
            Better::Higher => reference.median / r.median,
        }
    }

    /// The best peer of a case (by its primary metric), if any peer ran.
    pub fn best_peer<'a>(&'a self, group: &str, case: &str) -> Option<&'a Record> {
        self.primary(group, case)
            .into_iter()
            .filter(|r| r.role == Role::Peer && r.median > 0.0)
            .min_by(|a, b| {
                let (x, y) = match a.better {
                    Better::Lower => (a.median, b.median),
                    Better::Higher => (b.median, a.median),
                };
                x.total_cmp(&y)
            })
    }

    /// The Markdown table of one case: the primary metric's median and
    /// min–max, its cost as a multiple of the best peer's and of the
    /// floor's (under 1: cheaper), then the other metrics' medians.
    pub fn table(&self, group: &str, case: &str) -> String {
        let prim = self.primary(group, case);
        let Some(first) = prim.first() else {
            return String::new();
        };
        let extras: Vec<&str> = uniq(
            self.of_case(group, case)
                .filter(|r| r.metric != first.metric)
                .map(|r| r.metric.as_str()),
        );
        let best = self.best_peer(group, case);
        let floor = prim.iter().find(|r| r.role == Role::Floor).copied();
        let dir = match first.better {
            Better::Lower => "lower is better",
            Better::Higher => "higher is better",
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "#### {group}: {case}\n\n{} in {} ({dir}; median of {} reps). \
             × columns: cost as a multiple of the best peer's{} and of the floor's (under 1 = cheaper).\n",
            first.metric,
            first.unit,
            first.reps,
            best.map_or(String::new(), |b| format!(" ({})", b.contender)),
        );
        let _ = write!(
            out,
            "| contender | median | min–max | × best peer | × floor |"
        );
        for e in &extras {
            let _ = write!(out, " {e} |");
        }
        let _ = write!(out, "\n|---|---:|---:|---:|---:|");
        for _ in &extras {
            out.push_str("---:|");
        }
        out.push('\n');
        for r in &prim {
            let ratio = |x: Option<&Record>| {
                x.filter(|x| x.median > 0.0 && r.median > 0.0)
                    .map_or("–".to_string(), |x| {
                        format!("{:.2}", Self::cost_ratio(r, x))
                    })
            };
            let name = match r.role {
                Role::Fdloop => format!("**{}**", r.contender),
                Role::Floor => format!("{} (floor)", r.contender),
                Role::Peer => r.contender.clone(),
            };
            let _ = write!(
                out,
                "| {name} | {} | {}–{} | {} | {} |",
                fmt_value(r.median, &r.unit),
                fmt_value(r.min, &r.unit),
                fmt_value(r.max, &r.unit),
                ratio(best),
                ratio(floor),
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

    /// Every record as a JSON array of objects with the fields `group`,
    /// `case`, `contender`, `metric`, `unit`, `median`, `min`, `max`,
    /// `reps`, `role` and `better` (`lower`/`higher`), one per line.
    pub fn to_json(&self) -> String {
        let mut out = String::from("[\n");
        for (i, r) in self.records.iter().enumerate() {
            let _ = write!(
                out,
                "  {{\"group\":{},\"case\":{},\"contender\":{},\"metric\":{},\"unit\":{},\
                 \"median\":{},\"min\":{},\"max\":{},\"reps\":{},\"role\":\"{}\",\"better\":\"{}\"}}",
                json_str(&r.group),
                json_str(&r.case),
                json_str(&r.contender),
                json_str(&r.metric),
                json_str(&r.unit),
                json_num(r.median),
                json_num(r.min),
                json_num(r.max),
                r.reps,
                r.role.as_str(),
                match r.better {
                    Better::Lower => "lower",
                    Better::Higher => "higher",
                }
            );
            out.push_str(if i + 1 < self.records.len() {
                ",\n"
            } else {
                "\n"
            });
        }
        out.push_str("]\n");
        out
    }

    /// Reads back what [`to_json`](Report::to_json) wrote (so charts and
    /// tables can be redrawn from a saved run).
    ///
    /// # Errors
    ///
    /// A message naming what is malformed: only this writer's format (one
    /// flat object per record, string and number fields) is accepted.
    pub fn from_json(text: &str) -> Result<Report, String> {
        let mut records = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim().trim_end_matches(',');
            if line.is_empty() || line == "[" || line == "]" {
                continue;
            }
            let fields = parse_object(line).map_err(|e| format!("line {}: {e}", n + 1))?;
            let get = |k: &str| {
                fields
                    .iter()
                    .find(|(name, _)| name == k)
                    .map(|(_, v)| v.as_str())
                    .ok_or(format!("line {}: no field {k:?}", n + 1))
            };
            let num = |k: &str| -> Result<f64, String> {
                let v = get(k)?;
                if v == "null" {
                    return Ok(f64::NAN);
                }
                v.parse().map_err(|e| format!("line {}: {k}: {e}", n + 1))
            };
            records.push(Record {
                group: get("group")?.into(),
                case: get("case")?.into(),
                contender: get("contender")?.into(),
                metric: get("metric")?.into(),
                unit: get("unit")?.into(),
                median: num("median")?,
                min: num("min")?,
                max: num("max")?,
                reps: num("reps")? as usize,
                role: match get("role")? {
                    "floor" => Role::Floor,
                    "fdloop" => Role::Fdloop,
                    "peer" => Role::Peer,
                    other => return Err(format!("line {}: role {other:?}", n + 1)),
                },
                better: match get("better")? {
                    "lower" => Better::Lower,
                    "higher" => Better::Higher,
                    other => return Err(format!("line {}: better {other:?}", n + 1)),
                },
            });
        }
        Ok(Report { records })
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
        let cases = self.cases(group);
        let mut body = String::new();
        let mut y = 40.0;
        for case in &cases {
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
            let dir = match first.better {
                Better::Lower => "lower is better",
                Better::Higher => "higher is better",
            };
            let _ = writeln!(
                body,
                "<text x=\"10\" y=\"{:.0}\" font-weight=\"bold\">{}: {} ({}, {dir}{})</text>",
                y + 16.0,
                xml(case),
                xml(&first.metric),
                xml(&first.unit),
                if log { "; log scale" } else { "" },
            );
            y += HEAD;
            for r in &prim {
                let colour = match r.role {
                    Role::Fdloop => "#e8731a",
                    Role::Floor => "#8c8c8c",
                    Role::Peer => "#3a78c2",
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

/// The distinct items of `it`, in first-seen order.
fn uniq<'a>(it: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for s in it {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// A value with its unit: times in ns get `fmt_ns`, other units three
/// significant digits or so.
///
/// # Examples
///
/// ```
/// use fdloop_bench::record::fmt_value;
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

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Splits one flat JSON object into (name, value) pairs; string values
/// are unescaped, others kept as written.
fn parse_object(s: &str) -> Result<Vec<(String, String)>, String> {
    let body = s
        .strip_prefix('{')
        .and_then(|b| b.strip_suffix('}'))
        .ok_or("not an object")?;
    let mut out = Vec::new();
    let mut it = body.chars().peekable();
    loop {
        while it.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            it.next();
        }
        if it.peek().is_none() {
            return Ok(out);
        }
        let name = read_string(&mut it)?;
        if it.next() != Some(':') {
            return Err(format!("no ':' after {name:?}"));
        }
        let value = if it.peek() == Some(&'"') {
            read_string(&mut it)?
        } else {
            let mut v = String::new();
            while let Some(&c) = it.peek() {
                if c == ',' {
                    break;
                }
                v.push(c);
                it.next();
            }
            v.trim().to_string()
        };
        out.push((name, value));
    }
}

fn read_string(it: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<String, String> {
    if it.next() != Some('"') {
        return Err("expected a string".into());
    }
    let mut out = String::new();
    loop {
        match it.next() {
            None => return Err("unterminated string".into()),
            Some('"') => return Ok(out),
            Some('\\') => match it.next() {
                Some('n') => out.push('\n'),
                Some('u') => {
                    let hex: String = it.by_ref().take(4).collect();
                    let c = u32::from_str_radix(&hex, 16)
                        .ok()
                        .and_then(char::from_u32)
                        .ok_or(format!("bad escape \\u{hex}"))?;
                    out.push(c);
                }
                Some(c) => out.push(c),
                None => return Err("unterminated escape".into()),
            },
            Some(c) => out.push(c),
        }
    }
}

fn json_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".into()
    }
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

    fn sample() -> Report {
        let mut r = Report::default();
        let l = Better::Lower;
        r.add(
            "g",
            "c",
            "raw",
            Role::Floor,
            "t",
            "ns",
            l,
            &[100.0, 90.0, 110.0],
        );
        r.add("g", "c", "fd", Role::Fdloop, "t", "ns", l, &[120.0]);
        r.add("g", "c", "p1", Role::Peer, "t", "ns", l, &[300.0]);
        r.add("g", "c", "p2", Role::Peer, "t", "ns", l, &[200.0]);
        r.add(
            "g",
            "c",
            "fd",
            Role::Fdloop,
            "syscalls/op",
            "calls",
            l,
            &[1.0],
        );
        r.add(
            "g",
            "tp",
            "fd",
            Role::Fdloop,
            "rate",
            "M msg/s",
            Better::Higher,
            &[30.0],
        );
        r.add(
            "g",
            "tp",
            "p",
            Role::Peer,
            "rate",
            "M msg/s",
            Better::Higher,
            &[20.0],
        );
        r
    }

    #[test]
    fn best_peer_follows_the_metric_direction() {
        let r = sample();
        assert_eq!(
            r.best_peer("g", "c").map(|b| b.contender.as_str()),
            Some("p2")
        );
        assert_eq!(
            r.best_peer("g", "tp").map(|b| b.contender.as_str()),
            Some("p")
        );
    }

    #[test]
    fn table_has_ratios_and_extra_columns() {
        let t = sample().table("g", "c");
        // fd: 120 / best peer 200 = 0.60; / floor 100 = 1.20; syscalls 1.00.
        assert!(
            t.contains("| **fd** | 120 ns | 120 ns–120 ns | 0.60 | 1.20 | 1.00 calls |"),
            "{t}"
        );
        assert!(
            t.contains("| p2 | 200 ns | 200 ns–200 ns | 1.00 | 2.00 | – |"),
            "{t}"
        );
        assert!(
            t.contains("| raw (floor) | 100 ns | 90.0 ns–110 ns | 0.50 | 1.00 | – |"),
            "{t}"
        );
        // A rate: 30 M/s against the best peer's 20 costs 0.67 of its time.
        let t = sample().table("g", "tp");
        assert!(
            t.contains("| **fd** | 30.0 M msg/s | 30.0 M msg/s–30.0 M msg/s | 0.67 | – |"),
            "{t}"
        );
    }

    #[test]
    fn json_has_every_record_and_field() {
        let j = sample().to_json();
        assert_eq!(j.matches("\"group\"").count(), 7);
        assert!(j.contains(
            "{\"group\":\"g\",\"case\":\"c\",\"contender\":\"raw\",\"metric\":\"t\",\"unit\":\"ns\",\
             \"median\":100,\"min\":90,\"max\":110,\"reps\":3,\"role\":\"floor\",\"better\":\"lower\"}"
        ), "{j}");
        assert_eq!(json_str("a\"b\\\n\u{1}"), "\"a\\\"b\\\\\\n\\u0001\"");
    }

    /// Lateness is signed: a contender whose timers fire early has a
    /// negative median. It gets no ratio (a ratio of a negative time means
    /// nothing), can't be the best peer, draws as an empty bar, and survives
    /// the JSON round trip.
    #[test]
    fn a_negative_median_is_shown_but_never_ratioed() {
        let mut r = Report::default();
        r.add(
            "g",
            "late",
            "tfd",
            Role::Floor,
            "p50 lateness",
            "ns",
            Better::Lower,
            &[40e3],
        );
        r.add(
            "g",
            "late",
            "fd",
            Role::Fdloop,
            "p50 lateness",
            "ns",
            Better::Lower,
            &[44e3],
        );
        r.add(
            "g",
            "late",
            "early",
            Role::Peer,
            "p50 lateness",
            "ns",
            Better::Lower,
            &[-250e3, 90e3, -300e3],
        );
        r.add(
            "g",
            "late",
            "slow",
            Role::Peer,
            "p50 lateness",
            "ns",
            Better::Lower,
            &[88e3],
        );
        assert_eq!(
            r.best_peer("g", "late").map(|b| b.contender.as_str()),
            Some("slow")
        );
        let t = r.table("g", "late");
        assert!(
            t.contains("| early | -250.0 µs | -300.0 µs–90.0 µs | – | – |"),
            "{t}"
        );
        assert!(
            t.contains("| **fd** | 44.0 µs | 44.0 µs–44.0 µs | 0.50 | 1.10 |"),
            "{t}"
        );
        let svg = r.svg("g");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert!(!svg.contains("width=\"-"), "{svg}");
        let back = Report::from_json(&r.to_json()).unwrap();
        assert_eq!(back.records, r.records);
    }

    #[test]
    fn json_reads_back_what_it_wrote() {
        let mut r = sample();
        r.add(
            "g",
            "q\"uo\\te\n\u{1}",
            "x",
            Role::Peer,
            "t",
            "ns",
            Better::Lower,
            &[1.5],
        );
        let back = Report::from_json(&r.to_json()).unwrap();
        assert_eq!(back.records, r.records);
        assert!(Report::from_json("[\n  {\"group\":\"g\"}\n]").is_err());
        assert!(Report::from_json("{\"group\":\"g").is_err());
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
    fn values_format_by_unit() {
        assert_eq!(fmt_value(850.0, "ns"), "850 ns");
        assert_eq!(fmt_value(1.234, ""), "1.23");
        assert_eq!(fmt_value(0.0042, "calls"), "0.0042 calls");
        assert_eq!(fmt_value(0.0001, "calls"), "1.00e-4 calls");
        assert_eq!(fmt_value(1234.0, "µs"), "1234 µs");
    }
}
