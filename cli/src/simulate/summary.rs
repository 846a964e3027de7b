//! What a delivery run did, counted.

use std::fmt;

/// Which kind of delivery an outcome belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The first delivery of a job's webhook.
    Original,
    /// The same bytes sent again (at-least-once delivery).
    Duplicate,
    /// A body signed with a wrong secret.
    Forged,
    /// A webhook sent while the job runs (Replicate's `starting`), never retried.
    Progress,
}

/// How one delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// A `2xx`; `duplicate` when the receiver said `"duplicate": true`.
    Acked { duplicate: bool },
    /// A final non-retryable answer.
    Rejected,
    /// Still no `2xx` after the last attempt.
    GaveUp,
}

/// One delivery's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) kind: Kind,
    /// HTTP attempts made (at least one).
    pub(crate) attempts: u32,
    pub(crate) end: End,
}

/// The totals of a [`deliver`](super::deliver) run. Every delivery ends exactly one way:
/// acknowledged (or, when forged, `forged_accepted`), `rejected` or `gave_up`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Jobs created in the simulator (one webhook each).
    pub jobs: u32,
    /// HTTP attempts made, retries, duplicates and forged deliveries included.
    pub sent: u32,
    /// Genuine deliveries (originals, duplicates and in-progress ones) that got a `2xx`.
    pub acknowledged: u32,
    /// Extra copies of a job's webhook sent (identical bytes).
    pub duplicates: u32,
    /// Attempts that were retries of an earlier failed attempt.
    pub retried: u32,
    /// Deliveries that ended on a non-retryable answer (forged ones are expected here).
    pub rejected: u32,
    /// Deliveries still without a `2xx` after the last attempt.
    pub gave_up: u32,
    /// `2xx` answers whose JSON said `"duplicate": true`.
    pub duplicate_acks: u32,
    /// Deliveries signed with a wrong secret.
    pub forged: u32,
    /// Forged deliveries the receiver acknowledged (a receiver that does this is broken).
    pub forged_accepted: u32,
    /// Webhooks sent while their job ran (Replicate's `starting`; none for Katalo).
    pub progress: u32,
}

impl Summary {
    /// Adds up the outcomes of a run over `jobs` jobs.
    pub(crate) fn tally(jobs: u32, outcomes: &[Outcome]) -> Self {
        let mut s = Summary { jobs, ..Summary::default() };
        for o in outcomes {
            s.sent += o.attempts;
            s.retried += o.attempts.saturating_sub(1);
            match o.kind {
                Kind::Original => {}
                Kind::Duplicate => s.duplicates += 1,
                Kind::Forged => s.forged += 1,
                Kind::Progress => s.progress += 1,
            }
            match (o.end, o.kind) {
                (End::Acked { duplicate }, kind) => {
                    s.duplicate_acks += u32::from(duplicate);
                    if kind == Kind::Forged {
                        s.forged_accepted += 1;
                    } else {
                        s.acknowledged += 1;
                    }
                }
                (End::Rejected, _) => s.rejected += 1,
                (End::GaveUp, _) => s.gave_up += 1,
            }
        }
        s
    }

    /// Whether every genuine delivery was acknowledged and no forged one was.
    pub fn all_acknowledged(&self) -> bool {
        self.acknowledged == self.jobs + self.duplicates + self.progress && self.forged_accepted == 0
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let progress = [("progress sent", self.progress)];
        // Katalo sends none: its table stays as it always was.
        let progress = if self.progress > 0 { &progress[..] } else { &[] };
        let rows = [
            ("jobs", self.jobs),
            ("attempts sent", self.sent),
            ("acknowledged", self.acknowledged),
            ("duplicate copies", self.duplicates),
            ("retried", self.retried),
            ("rejected", self.rejected),
            ("gave up", self.gave_up),
            ("duplicate acks", self.duplicate_acks),
            ("forged sent", self.forged),
            ("forged accepted", self.forged_accepted),
        ];
        let rows = rows.iter().chain(progress);
        let width = rows.clone().map(|(_, v)| v.to_string().len()).max().unwrap_or(1);
        for (label, value) in rows {
            writeln!(f, "{label:<16} {value:>width$}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(kind: Kind, attempts: u32, end: End) -> Outcome {
        Outcome { kind, attempts, end }
    }

    #[test]
    fn tally_counts_each_delivery_once() {
        let acked = End::Acked { duplicate: false };
        let s = Summary::tally(
            3,
            &[
                o(Kind::Original, 1, acked),
                o(Kind::Original, 3, acked),
                o(Kind::Original, 6, End::GaveUp),
                o(Kind::Duplicate, 1, End::Acked { duplicate: true }),
                o(Kind::Forged, 1, End::Rejected),
            ],
        );
        let expected = Summary {
            jobs: 3,
            sent: 12,
            acknowledged: 3,
            duplicates: 1,
            retried: 7,
            rejected: 1,
            gave_up: 1,
            duplicate_acks: 1,
            forged: 1,
            forged_accepted: 0,
            progress: 0,
        };
        assert_eq!(s, expected);
        assert!(!s.all_acknowledged(), "one job gave up");
    }

    #[test]
    fn forged_acceptance_fails_the_run() {
        let s = Summary::tally(
            1,
            &[
                o(Kind::Original, 1, End::Acked { duplicate: false }),
                o(Kind::Forged, 1, End::Acked { duplicate: false }),
            ],
        );
        assert_eq!((s.acknowledged, s.forged_accepted), (1, 1));
        assert!(!s.all_acknowledged());
        assert!(Summary::tally(1, &[o(Kind::Original, 2, End::Acked { duplicate: false })]).all_acknowledged());
    }

    #[test]
    fn in_progress_deliveries_count_and_show() {
        let acked = End::Acked { duplicate: false };
        let s = Summary::tally(1, &[o(Kind::Progress, 1, acked), o(Kind::Original, 1, acked)]);
        assert_eq!((s.progress, s.acknowledged, s.sent), (1, 2, 2));
        assert!(s.all_acknowledged());
        assert!(
            !Summary::tally(1, &[o(Kind::Progress, 1, End::GaveUp), o(Kind::Original, 1, acked)]).all_acknowledged()
        );
        let table = s.to_string();
        assert_eq!(table.lines().last(), Some("progress sent    1"));
        assert!(!Summary::default().to_string().contains("progress"));
    }

    #[test]
    fn table_is_aligned() {
        let table = Summary { jobs: 10, sent: 123, ..Summary::default() }.to_string();
        let lines: Vec<_> = table.lines().collect();
        assert_eq!(lines[0], "jobs              10");
        assert_eq!(lines[1], "attempts sent    123");
        assert!(lines.iter().all(|l| l.len() == lines[0].len()));
    }
}
