//! The figures of a report run and their statistics: medians, percentiles,
//! the best peer of a case and cost ratios. How they are printed (tables,
//! summary, charts, JSON files) is [`render`](crate::render)'s business.
//!
//! A figure is a [`Record`]: one metric of one contender in one case of one
//! group, summarised over its repetitions. The first metric recorded for a
//! case is its *primary* metric (the one ratios and charts use); later
//! metrics of the same case (syscalls per operation, p99, …) are extras.

use serde::{Deserialize, Deserializer, Serialize};

/// What a contender is to the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The case's reference, the `× floor` column: the physical floor, the
    /// least any loop can do (a raw syscall loop); where a case has no such
    /// floor, the peer fdloop must match (channel throughput:
    /// crossbeam-channel of the same capacity).
    Floor,
    /// fdloop itself.
    Fdloop,
    /// A peer library (Rust or C).
    Peer,
    /// A reference point shown beside the floor, neither a peer nor the
    /// floor (the timer lateness floor with epoll added: what part of a
    /// loop's lateness is epoll's). Never the "best peer".
    Reference,
}

impl Role {
    /// The role of a contender by its name: `floor` is the case's floor
    /// (`""` if it has none), fdloop's contenders' names start with
    /// `fdloop`, the rest are peers.
    pub fn of(name: &str, floor: &str) -> Role {
        if name == floor {
            Role::Floor
        } else if name.starts_with("fdloop") {
            Role::Fdloop
        } else {
            Role::Peer
        }
    }
}

/// Which direction of a metric is good.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Times, syscalls: less is better.
    Lower,
    /// Rates: more is better.
    Higher,
}

/// One metric of one contender in one case, over its repetitions; one
/// object of the report's JSON file (fields in this order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Median over the repetitions (JSON `null`, for NaN, reads as NaN).
    #[serde(deserialize_with = "nan_if_null")]
    pub median: f64,
    /// Smallest repetition.
    #[serde(deserialize_with = "nan_if_null")]
    pub min: f64,
    /// Largest repetition.
    #[serde(deserialize_with = "nan_if_null")]
    pub max: f64,
    /// How many repetitions.
    pub reps: usize,
    /// Floor, fdloop or peer.
    pub role: Role,
    /// Which direction is good.
    pub better: Better,
    /// A secondary variant of a headline case (another thread placement):
    /// in the tables, left out of the summary. Absent from the JSON when
    /// false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub detail: bool,
    /// Every repetition's value, in the order run (the harness interleaves
    /// the contenders of a case, so sample `i` of each ran in the same
    /// round): what [`paired_cost_over`](Record::paired_cost_over) pairs.
    /// Absent from the JSON where there are none (files written before it
    /// was kept read back with none).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nans_if_null"
    )]
    pub samples: Vec<f64>,
}

/// JSON has no NaN: serde_json writes it as `null`, which reads back here.
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// [`nan_if_null`] for every element of an array.
fn nans_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?
        .into_iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect())
}

impl Record {
    /// This record's cost relative to `reference`'s, as a multiple of its
    /// time: above 1 is slower (for a rate, the inverse ratio). `None`
    /// unless both medians are positive (a ratio of a negative lateness
    /// means nothing).
    pub fn cost_over(&self, reference: &Record) -> Option<f64> {
        if !(self.median > 0.0 && reference.median > 0.0) {
            return None;
        }
        Some(match self.better {
            Better::Lower => self.median / reference.median,
            Better::Higher => reference.median / self.median,
        })
    }

    /// The median over the rounds of this record's cost relative to
    /// `reference`'s in the same round (sample `i` against sample `i`):
    /// a slow drift of the machine (another process, a frequency change)
    /// moves both samples of a round alike and cancels here, where it can
    /// tip a ratio of two medians taken over different rounds. `None`
    /// unless both have the same number of samples, at least two, all
    /// positive.
    ///
    /// # Examples
    ///
    /// ```
    /// use fdloop_bench::record::{Better, Report, Role};
    /// let mut r = Report::default();
    /// // The machine slows down over the three rounds; fdloop is 10 % ahead in each.
    /// r.add("g", "c", "fdloop", Role::Fdloop, "t", "ns", Better::Lower, &[90.0, 180.0, 360.0]);
    /// r.add("g", "c", "peer", Role::Peer, "t", "ns", Better::Lower, &[100.0, 200.0, 400.0]);
    /// let (fd, peer) = (r.primary("g", "c")[0], r.primary("g", "c")[1]);
    /// assert!((fd.paired_cost_over(peer).unwrap() - 0.9).abs() < 1e-12);
    /// ```
    pub fn paired_cost_over(&self, reference: &Record) -> Option<f64> {
        let (a, b) = (&self.samples, &reference.samples);
        if a.len() != b.len() || a.len() < 2 || a.iter().chain(b).any(|&v| v.is_nan() || v <= 0.0) {
            return None;
        }
        let ratios: Vec<f64> = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| match self.better {
                Better::Lower => x / y,
                Better::Higher => y / x,
            })
            .collect();
        Some(Summary::of(&ratios).median)
    }
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
/// let fd = r.primary("g", "c")[1];
/// assert_eq!(fd.cost_over(r.best_peer("g", "c").unwrap()), Some(0.5));
/// let t = r.table("g", "c");
/// assert!(t.contains("| **fdloop** | 120 ns | 120 ns–120 ns | 0.50 | – | 1.14 |"), "{t}");
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
            detail: false,
            samples: samples.to_vec(),
        });
    }

    /// Marks every record of a case as [`detail`](Record::detail): a
    /// secondary variant, left out of the summary.
    pub fn mark_detail(&mut self, group: &str, case: &str) {
        self.records
            .iter_mut()
            .filter(|r| r.group == group && r.case == case)
            .for_each(|r| r.detail = true);
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

    /// Every record of one case, in the order recorded.
    pub fn of_case<'a, 'k>(
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
        self.of_case(group, case)
            .filter(|r| r.metric == first.metric)
            .collect()
    }

    /// The metrics of a case other than the primary one, in the order
    /// first recorded.
    pub fn extra_metrics(&self, group: &str, case: &str) -> Vec<&str> {
        let mut it = self.of_case(group, case);
        let Some(first) = it.next() else {
            return Vec::new();
        };
        uniq(
            it.filter(|r| r.metric != first.metric)
                .map(|r| r.metric.as_str()),
        )
    }

    /// The best peer of a case (by its primary metric), if any peer ran
    /// with a positive median.
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

    /// The floor of a case (its primary-metric record), if it has one.
    pub fn floor<'a>(&'a self, group: &str, case: &str) -> Option<&'a Record> {
        self.primary(group, case)
            .into_iter()
            .find(|r| r.role == Role::Floor)
    }
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

/// Median, minimum and maximum of some samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Summary {
    /// The median (mean of the middle two for an even count).
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
}

impl Summary {
    /// Summarises `v`; all zeros for an empty slice.
    ///
    /// # Examples
    ///
    /// ```
    /// let s = fdloop_bench::record::Summary::of(&[3.0, 1.0, 2.0, 10.0]);
    /// assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 10.0));
    /// ```
    pub fn of(v: &[f64]) -> Summary {
        if v.is_empty() {
            return Summary {
                median: 0.0,
                min: 0.0,
                max: 0.0,
            };
        }
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let m = s.len() / 2;
        let median = if s.len() % 2 == 1 {
            s[m]
        } else {
            (s[m - 1] + s[m]) / 2.0
        };
        Summary {
            median,
            min: s[0],
            max: s[s.len() - 1],
        }
    }
}

/// The `p`-th percentile (0–100) of `sorted` (ascending), nearest-rank:
/// the smallest value with at least `p` % of the samples at or below it.
/// 0 for an empty slice.
///
/// # Examples
///
/// ```
/// let v: Vec<f64> = (1..=100).map(f64::from).collect();
/// assert_eq!(fdloop_bench::record::percentile(&v, 50.0), 50.0);
/// assert_eq!(fdloop_bench::record::percentile(&v, 99.0), 99.0);
/// assert_eq!(fdloop_bench::record::percentile(&v, 100.0), 100.0);
/// ```
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small report: a time case with a floor, fdloop and two peers
    /// (plus an extra metric), and a rate case.
    pub(crate) fn sample() -> Report {
        let (l, h) = (Better::Lower, Better::Higher);
        let mut r = Report::default();
        for (case, who, role, metric, unit, better, v) in [
            (
                "c",
                "raw",
                Role::Floor,
                "t",
                "ns",
                l,
                &[100.0, 90.0, 110.0][..],
            ),
            ("c", "fd", Role::Fdloop, "t", "ns", l, &[120.0]),
            ("c", "p1", Role::Peer, "t", "ns", l, &[300.0]),
            ("c", "p2", Role::Peer, "t", "ns", l, &[200.0]),
            ("c", "fd", Role::Fdloop, "syscalls/op", "calls", l, &[1.0]),
            ("tp", "fd", Role::Fdloop, "rate", "M msg/s", h, &[30.0]),
            ("tp", "p", Role::Peer, "rate", "M msg/s", h, &[20.0]),
        ] {
            r.add("g", case, who, role, metric, unit, better, v);
        }
        r
    }

    #[test]
    fn paired_cost_pairs_rounds_and_needs_two_positive_samples_each() {
        let (l, h) = (Better::Lower, Better::Higher);
        let mut r = Report::default();
        // Rates, the machine's speed drifting from round to round: fdloop
        // is 5 % ahead in every one.
        r.add(
            "g",
            "c",
            "fd",
            Role::Fdloop,
            "t",
            "",
            h,
            &[105.0, 52.5, 210.0],
        );
        r.add("g", "c", "p", Role::Peer, "t", "", h, &[100.0, 50.0, 200.0]);
        r.add("g", "c", "one", Role::Peer, "t", "", h, &[100.0]);
        r.add(
            "g",
            "c",
            "zero",
            Role::Peer,
            "t",
            "",
            h,
            &[100.0, 0.0, 200.0],
        );
        r.add(
            "g",
            "c",
            "four",
            Role::Peer,
            "t",
            "",
            h,
            &[1.0, 1.0, 1.0, 1.0],
        );
        r.add("g", "d", "a", Role::Fdloop, "t", "", l, &[2.0, 6.0]);
        r.add("g", "d", "b", Role::Peer, "t", "", l, &[1.0, 3.0]);
        let c = r.primary("g", "c");
        let paired = c[0].paired_cost_over(c[1]).unwrap();
        assert!((paired - 100.0 / 105.0).abs() < 1e-12, "{paired}");
        assert!((c[0].cost_over(c[1]).unwrap() - 100.0 / 105.0).abs() < 1e-12);
        for other in &c[2..] {
            assert_eq!(c[0].paired_cost_over(other), None, "{}", other.contender);
        }
        // Times, an even count: the mean of the middle two ratios.
        let d = r.primary("g", "d");
        assert_eq!(d[0].paired_cost_over(d[1]), Some(2.0));
        // The samples go through the JSON.
        let back = Report::from_json(&r.to_json()).unwrap();
        assert_eq!(back.records, r.records);
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
        assert_eq!(r.floor("g", "c").map(|f| f.median), Some(100.0));
        assert!(r.floor("g", "tp").is_none());
        assert_eq!(r.extra_metrics("g", "c"), ["syscalls/op"]);
    }
}
