//! RFM: recency, frequency and monetary value scored 1–5 against the population, and
//! the standard segment of each score combination.
//!
//! Scores are quintiles as SQL's `NTILE(5)` makes them: rows sorted from worst to best
//! (recency: most days since the last purchase first; frequency and money: least first),
//! ties broken by the customer's key ascending, cut into five buckets whose sizes differ
//! by at most one (the first `n mod 5` buckets take the extra row). The segment of each
//! of the 125 codes (`100·R + 10·F + M`) is the published map in `rfm_segment_map.csv`.

use std::sync::OnceLock;

use strum::{EnumIter, EnumString, IntoStaticStr};

/// The eleven standard RFM segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, EnumString, IntoStaticStr, EnumIter)]
pub(crate) enum Segment {
    #[strum(serialize = "Champions")]
    Champions,
    #[strum(serialize = "Loyal Customers")]
    LoyalCustomers,
    #[strum(serialize = "Potential Loyalist")]
    PotentialLoyalist,
    #[strum(serialize = "New Customers")]
    NewCustomers,
    #[strum(serialize = "Promising")]
    Promising,
    #[strum(serialize = "Need Attention")]
    NeedAttention,
    #[strum(serialize = "About To Sleep")]
    AboutToSleep,
    #[strum(serialize = "At Risk")]
    AtRisk,
    #[strum(serialize = "Can't Lose Them")]
    CantLoseThem,
    #[strum(serialize = "Hibernating")]
    Hibernating,
    #[strum(serialize = "Lost")]
    Lost,
}

impl Segment {
    /// The segment's name as the map and reports write it ("Can't Lose Them").
    pub(crate) fn name(self) -> &'static str {
        self.into()
    }

    /// The segment of scores `r`, `f`, `m` (each 1–5).
    pub(crate) fn of(r: u8, f: u8, m: u8) -> Segment {
        let index = |s: u8| usize::from(s.clamp(1, 5) - 1);
        segment_map()[index(r) * 25 + index(f) * 5 + index(m)]
    }
}

/// The published map of the 125 codes, in code order (111, 112, …, 555).
fn segment_map() -> &'static [Segment; 125] {
    static MAP: OnceLock<[Segment; 125]> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut map = [Segment::Lost; 125];
        let mut seen = [false; 125];
        for line in include_str!("rfm_segment_map.csv").lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let mut cells = line.split(',');
            let code: usize = cells.next().and_then(|c| c.trim().parse().ok()).expect("rfm_segment_map.csv: code");
            let segment = cells.next().and_then(|s| s.trim().parse().ok()).expect("rfm_segment_map.csv: segment");
            let (r, f, m) = (code / 100, code / 10 % 10, code % 10);
            assert!((1..=5).contains(&r) && (1..=5).contains(&f) && (1..=5).contains(&m), "code {code}");
            let i = (r - 1) * 25 + (f - 1) * 5 + (m - 1);
            map[i] = segment;
            seen[i] = true;
        }
        assert!(seen.iter().all(|s| *s), "rfm_segment_map.csv must list all 125 codes");
        map
    })
}

/// One customer's raw RFM figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Figures {
    /// Days from the last purchase to the analysis date.
    pub(crate) recency_days: i64,
    /// Purchases (days with a purchase).
    pub(crate) frequency: i64,
    /// Money spent, in cents.
    pub(crate) monetary_cents: i64,
}

/// A customer's scores, code and segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scores {
    pub(crate) recency: u8,
    pub(crate) frequency: u8,
    pub(crate) monetary: u8,
}

impl Scores {
    /// `100·R + 10·F + M`, e.g. 545.
    pub(crate) fn code(self) -> u16 {
        u16::from(self.recency) * 100 + u16::from(self.frequency) * 10 + u16::from(self.monetary)
    }

    #[cfg(test)]
    pub(crate) fn segment(self) -> Segment {
        Segment::of(self.recency, self.frequency, self.monetary)
    }
}

/// Scores every customer against the others. `customers` pairs each customer's key (the
/// tie-breaker, ascending) with its figures; the result is in the same order.
pub(crate) fn score<K: Ord>(customers: &[(K, Figures)]) -> Vec<Scores> {
    let quintiles = |worst_first: fn(&Figures, &Figures) -> std::cmp::Ordering| {
        let mut order: Vec<usize> = (0..customers.len()).collect();
        order.sort_by(|&i, &j| {
            let (a, b) = (&customers[i], &customers[j]);
            worst_first(&a.1, &b.1).then_with(|| a.0.cmp(&b.0))
        });
        let mut scores = vec![0u8; customers.len()];
        for (rank, i) in order.into_iter().enumerate() {
            scores[i] = ntile(rank, customers.len(), 5);
        }
        scores
    };
    let r = quintiles(|a, b| b.recency_days.cmp(&a.recency_days));
    let f = quintiles(|a, b| a.frequency.cmp(&b.frequency));
    let m = quintiles(|a, b| a.monetary_cents.cmp(&b.monetary_cents));
    (0..customers.len()).map(|i| Scores { recency: r[i], frequency: f[i], monetary: m[i] }).collect()
}

/// Where a population's quintiles begin, for scoring a customer against a population
/// scored earlier (an incremental refresh) without ranking everyone again: for each of
/// scores 2–5, the worst figure that still earned it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Cuts {
    /// The most days since the last purchase with recency score 2, 3, 4, 5.
    pub(crate) recency_days: Vec<Option<i64>>,
    /// The fewest purchase days with frequency score 2, 3, 4, 5.
    pub(crate) frequency: Vec<Option<i64>>,
    /// The least money (cents) with monetary score 2, 3, 4, 5.
    pub(crate) monetary_cents: Vec<Option<i64>>,
}

impl Cuts {
    /// The cut points of a scored population (`figures` and their `scores`, in order).
    pub(crate) fn of(figures: &[Figures], scores: &[Scores]) -> Cuts {
        let mut cuts = Cuts { recency_days: vec![None; 4], frequency: vec![None; 4], monetary_cents: vec![None; 4] };
        for (f, s) in figures.iter().zip(scores) {
            let at = |score: u8| usize::from(score).checked_sub(2);
            if let Some(i) = at(s.recency) {
                cuts.recency_days[i] = cuts.recency_days[i].max(Some(f.recency_days));
            }
            if let Some(i) = at(s.frequency) {
                cuts.frequency[i] = Some(cuts.frequency[i].map_or(f.frequency, |v| v.min(f.frequency)));
            }
            if let Some(i) = at(s.monetary) {
                cuts.monetary_cents[i] =
                    Some(cuts.monetary_cents[i].map_or(f.monetary_cents, |v| v.min(f.monetary_cents)));
            }
        }
        cuts
    }

    /// The scores `figures` earn against the population these cut points came from: one
    /// plus the number of cut points they reach.
    pub(crate) fn score(&self, figures: &Figures) -> Scores {
        let reached = |cuts: &[Option<i64>], reaches: &dyn Fn(i64) -> bool| {
            1 + u8::try_from(cuts.iter().flatten().filter(|c| reaches(**c)).count()).unwrap_or(4)
        };
        Scores {
            recency: reached(&self.recency_days, &|c| figures.recency_days <= c),
            frequency: reached(&self.frequency, &|c| figures.frequency >= c),
            monetary: reached(&self.monetary_cents, &|c| figures.monetary_cents >= c),
        }
    }
}

/// `NTILE(buckets)` of the row at 0-based `rank` of `n`: 1-based, the first `n mod
/// buckets` buckets one row larger.
fn ntile(rank: usize, n: usize, buckets: usize) -> u8 {
    let (size, extra) = (n / buckets, n % buckets);
    let large = extra * (size + 1);
    let bucket = if rank < large { rank / (size + 1) } else { extra + (rank - large) / size.max(1) };
    u8::try_from(bucket + 1).unwrap_or(u8::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntile_matches_sql() {
        // 2,357 rows: 472, 472, 471, 471, 471.
        let sizes = (0..2357).fold([0; 5], |mut acc, rank| {
            acc[usize::from(ntile(rank, 2357, 5)) - 1] += 1;
            acc
        });
        assert_eq!(sizes, [472, 472, 471, 471, 471]);
        // Fewer rows than buckets: one each, from the first.
        assert_eq!((0..3).map(|r| ntile(r, 3, 5)).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn cut_points_score_like_the_ranking() {
        // 1,000 customers with distinct figures: scoring by cut points gives each one the
        // scores the ranking gave.
        let figures: Vec<Figures> = (0..1000i64)
            .map(|i| Figures {
                recency_days: (i * 7919) % 1000,
                frequency: 1 + (i * 104_729) % 1000,
                monetary_cents: 100 + (i * 1_299_709) % 1000,
            })
            .collect();
        let keyed: Vec<(i64, Figures)> = figures.iter().copied().enumerate().map(|(i, f)| (i as i64, f)).collect();
        let scores = score(&keyed);
        let cuts = Cuts::of(&figures, &scores);
        for (f, s) in figures.iter().zip(&scores) {
            assert_eq!(cuts.score(f), *s, "{f:?}");
        }
        // Beyond the population's ends: the best and the worst scores.
        let best = Figures { recency_days: 0, frequency: 5000, monetary_cents: i64::MAX };
        assert_eq!(cuts.score(&best).code(), 555);
        let worst = Figures { recency_days: 5000, frequency: 0, monetary_cents: 0 };
        assert_eq!(cuts.score(&worst).code(), 111);
        // The cut points survive being stored.
        let stored: Cuts = serde_json::from_str(&serde_json::to_string(&cuts).expect("json")).expect("back");
        assert_eq!(stored, cuts);
    }

    #[test]
    fn the_map_covers_every_code() {
        assert_eq!(Segment::of(5, 5, 5), Segment::Champions);
        assert_eq!(Segment::of(1, 1, 1), Segment::Lost);
        assert_eq!(Segment::of(1, 3, 4).name(), "At Risk");
        assert_eq!("Can't Lose Them".parse::<Segment>(), Ok(Segment::CantLoseThem));
    }
}
