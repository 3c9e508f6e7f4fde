//! How late each media tick starts against its absolute schedule, and how long it takes: the
//! send jitter every call of the shard sees. Logged every report period while the shard has
//! calls, so benchmarks (and operators) can read p50/p99 without a capture.

/// Ticks per report by default (10 s at 20 ms).
const TICKS_PER_REPORT: usize = 500;

pub struct TickStats {
    late_us: Vec<u32>,
    work_us: Vec<u32>,
    per_report: usize,
}

impl Default for TickStats {
    fn default() -> Self {
        TickStats::reporting_every(TICKS_PER_REPORT)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    pub ticks: usize,
    pub late_p50_us: u32,
    pub late_p99_us: u32,
    pub late_max_us: u32,
    pub work_p50_us: u32,
    pub work_p99_us: u32,
}

impl TickStats {
    /// A report every `ticks` recorded ticks (at least 1).
    pub fn reporting_every(ticks: usize) -> Self {
        TickStats {
            late_us: Vec::new(),
            work_us: Vec::new(),
            per_report: ticks.max(1),
        }
    }

    /// Records one tick; returns a report (and starts a new window) every `per_report` ticks.
    pub fn record(&mut self, late_us: u64, work_us: u64) -> Option<TickReport> {
        self.late_us.push(late_us.min(u64::from(u32::MAX)) as u32);
        self.work_us.push(work_us.min(u64::from(u32::MAX)) as u32);
        if self.late_us.len() < self.per_report {
            return None;
        }
        let report = self.report();
        self.late_us.clear();
        self.work_us.clear();
        report
    }

    fn report(&mut self) -> Option<TickReport> {
        let ticks = self.late_us.len();
        if ticks == 0 {
            return None;
        }
        self.late_us.sort_unstable();
        self.work_us.sort_unstable();
        let at = |v: &[u32], q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Some(TickReport {
            ticks,
            late_p50_us: at(&self.late_us, 0.50),
            late_p99_us: at(&self.late_us, 0.99),
            late_max_us: at(&self.late_us, 1.0),
            work_p50_us: at(&self.work_us, 0.50),
            work_p99_us: at(&self.work_us, 0.99),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_window_with_percentiles() {
        let mut s = TickStats::default();
        let mut reports = Vec::new();
        for i in 0..(2 * TICKS_PER_REPORT) as u64 {
            if let Some(r) = s.record(i % 100, 7) {
                reports.push(r);
            }
        }
        assert_eq!(reports.len(), 2);
        let r = reports[0];
        assert_eq!(r.ticks, TICKS_PER_REPORT);
        assert_eq!(r.late_max_us, 99);
        assert!((49..=50).contains(&r.late_p50_us));
        assert!((98..=99).contains(&r.late_p99_us), "{}", r.late_p99_us);
        assert_eq!(r.work_p99_us, 7);
    }
}
