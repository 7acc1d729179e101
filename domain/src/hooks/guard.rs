//! The delivery guard: what lets the AWS deliverer send one round of deliveries of one event
//! to one subscription at most once, although SQS, EventBridge and the table's stream each
//! hand it on at least once (a duplicated stream record publishes the event again, a
//! duplicated bus message fans out again, a job message may arrive twice, even at once in two
//! deliverers).
//!
//! One small item per round, keyed by the job's guard id (`event_delivery`, or a redelivery's
//! own id: see [`Pending::guard_id`]), in one of three states: `claimed` (an attempt is under
//! way, until its lease ends), `delivered` (done: every later copy is acknowledged without a
//! POST), `failed` (the last attempt failed: the next receive may claim it). The rules are
//! here, pure; the deliverer reads the item, asks [`verdict`], and writes what it answers.
//!
//! What it costs: one strongly consistent read per job message, and two writes of one unit
//! per attempt (the claim and its end). Both writes are needed: without the claim two copies
//! received at once would both POST; without the end (`delivered`) a copy received after the
//! lease would POST again, and (`failed`) the retry would wait for the lease.

use super::*;
use crate::table::{guard_key, Condition, Item, WriteOp};

/// How long a claim holds: a little longer than the deliverer's 60 s timeout, so an attempt
/// still running never loses its claim; one that crashed holds it no longer than this.
pub const GUARD_LEASE_SECONDS: i64 = 90;
/// A copy that finds the guard claimed looks again after at most this long: an attempt
/// (15 s at most for the receiver) and its bookkeeping are over by then as a rule, and the
/// copy is then acknowledged (or makes the retry) without waiting out the whole lease.
pub const GUARD_RECHECK_SECONDS: i64 = 20;

/// A guard's state, as its item's document stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Guard {
    /// An attempt is under way; its claim lapses at `until` (epoch seconds).
    Claimed { until: i64 },
    /// The receiver took it: nothing more is sent in this round.
    Delivered,
    /// The last attempt failed (or the attempt could not be made): the next may claim it.
    Failed,
}

/// A claim on a guard: the write that takes it, then the one that ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    aid: String,
    id: String,
    /// What the taking write is conditioned on: absent, or the version read.
    cond: Condition,
    /// The version the claim is written at; its end is conditioned on it.
    version: u64,
}

impl Claim {
    fn put(&self, state: Guard, version: u64, cond: Condition, now: i64) -> WriteOp {
        let doc = serde_json::to_string(&state).unwrap_or_default();
        let mut item = Item::new(guard_key(&self.aid, &self.id), version, doc);
        // Kept as long as the delivery records: longer than any copy of the job can live
        // (SQS keeps a message 14 days at most).
        item.ttl = Some(now.saturating_add(DELIVERY_RETENTION_SECONDS));
        WriteOp::Put { item, cond: Some(cond) }
    }

    /// The write that takes the guard for an attempt starting at `now` (a failed condition:
    /// another copy took it first).
    pub fn take(&self, now: i64) -> WriteOp {
        let until = now.saturating_add(GUARD_LEASE_SECONDS);
        self.put(Guard::Claimed { until }, self.version, self.cond, now)
    }

    /// The write that ends the claim: `delivered`, or `failed` so that the retry may claim it
    /// at once. Conditioned on the claim: one that lapsed and was taken over is not undone.
    pub fn end(&self, delivered: bool, now: i64) -> WriteOp {
        let state = if delivered { Guard::Delivered } else { Guard::Failed };
        self.put(state, self.version.saturating_add(1), Condition::VersionIs(self.version), now)
    }
}

/// What a job message is to do, given its guard as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered already: the message is done with (no POST, no record, no meter).
    Done,
    /// Another attempt holds the guard: see the message again after this many seconds.
    Wait { seconds: i32 },
    /// Free (absent, failed, or a lapsed claim): claim it, then attempt.
    Claim(Claim),
}

/// The verdict on the job `aid`/`guard_id` whose guard item reads `read` at `now` (epoch
/// seconds). An unreadable guard counts as failed: claiming it may send again, but never
/// leaves a job undelivered.
pub fn verdict(aid: &str, guard_id: &str, read: Option<&Item>, now: i64) -> Verdict {
    let claim = |cond, version| Verdict::Claim(Claim { aid: aid.to_owned(), id: guard_id.to_owned(), cond, version });
    let Some(item) = read else { return claim(Condition::NotExists, 0) };
    match serde_json::from_str::<Guard>(&item.doc).unwrap_or(Guard::Failed) {
        Guard::Delivered => Verdict::Done,
        Guard::Claimed { until } if until > now => {
            let seconds = until.saturating_sub(now).saturating_add(1).clamp(1, GUARD_RECHECK_SECONDS);
            Verdict::Wait { seconds: i32::try_from(seconds).unwrap_or(1) }
        }
        Guard::Claimed { .. } | Guard::Failed => {
            claim(Condition::VersionIs(item.version), item.version.saturating_add(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn stored(op: &WriteOp) -> Item {
        match op {
            WriteOp::Put { item, .. } => item.clone(),
            other => panic!("a guard is only ever put: {other:?}"),
        }
    }

    fn claim_of(v: Verdict) -> Claim {
        match v {
            Verdict::Claim(c) => c,
            other => panic!("expected a claim, got {other:?}"),
        }
    }

    #[test]
    fn a_round_is_claimed_once_then_done_with() {
        let first = claim_of(verdict("T12345678", "ed-1", None, NOW));
        let taken = first.take(NOW);
        assert!(matches!(taken, WriteOp::Put { cond: Some(Condition::NotExists), .. }), "{taken:?}");
        let claimed = stored(&taken);
        assert_eq!(claimed.key(), guard_key("T12345678", "ed-1"));
        assert_eq!(claimed.ttl, Some(NOW + DELIVERY_RETENTION_SECONDS));

        // a copy received meanwhile waits, and looks again before the lease ends
        let Verdict::Wait { seconds } = verdict("T12345678", "ed-1", Some(&claimed), NOW + 5) else { panic!() };
        assert!((1..=GUARD_RECHECK_SECONDS as i32).contains(&seconds), "{seconds}");
        let Verdict::Wait { seconds } = verdict("T12345678", "ed-1", Some(&claimed), NOW + GUARD_LEASE_SECONDS - 3)
        else {
            panic!()
        };
        assert_eq!(seconds, 4, "just past the lease");

        // delivered: every later copy is done with
        let ended = first.end(true, NOW + 2);
        assert!(matches!(ended, WriteOp::Put { cond: Some(Condition::VersionIs(0)), .. }), "{ended:?}");
        let delivered = stored(&ended);
        assert_eq!(delivered.version, 1);
        assert_eq!(verdict("T12345678", "ed-1", Some(&delivered), NOW + 3), Verdict::Done);
        assert_eq!(verdict("T12345678", "ed-1", Some(&delivered), NOW + 999_999), Verdict::Done);
    }

    #[test]
    fn a_failed_or_lapsed_claim_is_claimed_again_on_the_version_read() {
        let first = claim_of(verdict("T12345678", "ed-2", None, NOW));
        let failed = stored(&first.end(false, NOW + 1));
        let retry = claim_of(verdict("T12345678", "ed-2", Some(&failed), NOW + 60));
        let taken = retry.take(NOW + 60);
        assert!(matches!(taken, WriteOp::Put { cond: Some(Condition::VersionIs(1)), .. }), "{taken:?}");
        assert_eq!(stored(&taken).version, 2);

        // an attempt that died holding its claim blocks the round only until its lease ends
        let held = stored(&retry.take(NOW + 60));
        assert!(matches!(
            verdict("T12345678", "ed-2", Some(&held), NOW + 60 + GUARD_LEASE_SECONDS - 1),
            Verdict::Wait { .. }
        ));
        let after = claim_of(verdict("T12345678", "ed-2", Some(&held), NOW + 60 + GUARD_LEASE_SECONDS));
        assert!(matches!(after.take(NOW), WriteOp::Put { cond: Some(Condition::VersionIs(2)), .. }));

        // an unreadable guard never holds a delivery back
        let garbage = Item::new(guard_key("T12345678", "ed-2"), 7, "{".into());
        assert!(matches!(verdict("T12345678", "ed-2", Some(&garbage), NOW), Verdict::Claim(_)));
    }

    #[test]
    fn a_redelivery_is_a_round_of_its_own() {
        let ev = webhook::WebhookEvent {
            id: "evt_1".into(),
            event: "shopping_draft_add".into(),
            account_id: "T12345678".into(),
            event_delivery: None,
            created_at: "2026-12-01T00:00:00.000Z".into(),
            version: 1,
            schema_version: String::new(),
            resource: Default::default(),
        };
        let rec = SubscriptionRecord::default();
        let first = Pending::new(&rec, &ev, "ed-3", 0);
        assert_eq!(first.guard_id(), "ed-3", "every copy of the first round shares its guard");
        let d = Delivery { event_delivery: "ed-3".into(), ..Default::default() };
        let again = Pending::again(&d, "T12345678", 0, "round-2".into());
        assert_eq!((again.event_delivery.as_str(), again.guard_id()), ("ed-3", "round-2".to_owned()));
        // a job without either still has a guard of its own
        let legacy: Pending = serde_json::from_str(
            r#"{"aid":"T12345678","hook_id":"h","event_id":"e","event":"x","body":"{}","attempts":0,"timestamp":0,"due_ms":0}"#,
        )
        .unwrap();
        assert_eq!(legacy.guard_id(), "h/e");
        assert!(!serde_json::to_string(&first).unwrap().contains("guard"), "the first round's jobs are unchanged");
    }
}
