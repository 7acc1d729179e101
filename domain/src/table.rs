//! The single-table design, as code shared by every storage engine.
//!
//! Every key starts with the account (`A#{aid}#`), so one tenant can never address another's
//! items — with two exceptions of the local server, named at their builders and tested: the
//! local delivery queue's partition (each sort key starts with the account) and the token
//! endpoint's API clients (looked up by client id; the record names the account). Every key
//! builder is here.
//!
//! | item                       | pk                            | sk                       | gsi1 (pk / sk)                            | gsi2 (pk / sk)                          | ttl |
//! |----------------------------|-------------------------------|--------------------------|-------------------------------------------|-----------------------------------------|-----|
//! | draft                      | `A#{aid}#D#{id}`              | `DRAFT`                  | `A#{aid}#DRAFTS[#{shard}]` / `{created_at}#{id}` | —                                       | from `time_to_live` |
//! | draft event (history)      | `A#{aid}#D#{id}`              | `EVENT#{version:010}`    | —                                         | —                                       | — |
//! | order header               | `A#{aid}#O#{id}`              | `ORDER`                  | `A#{aid}#ORDERS[#{shard}]` / `{created_at}#{id}` | `A#{aid}#C#{customer_id}` / `{created_at}#{id}` | from `time_to_live` |
//! | order stub (what expiry keeps) | `A#{aid}#O#{id}`          | `STUB`                   | —                                         | —                                       | — |
//! | order event (history)      | `A#{aid}#O#{id}`              | `EVENT#{version:010}`    | —                                         | —                                       | — |
//! | unique `order_id`          | `A#{aid}#ORDERID#{order_id}`  | `ID`                     | —                                         | —                                       | — |
//! | idempotency record         | `A#{aid}#IDEM#{key}`          | `IDEM`                   | —                                         | —                                       | 24 h |
//! | payment operation          | `A#{aid}#O#{id}`              | `PAY#{kind}#{op_id}`     | —                                         | —                                       | — |
//! | hook subscription          | `A#{aid}#HOOKS`               | `HOOK#{hook_id}`         | —                                         | —                                       | — |
//! | delivery attempt           | `A#{aid}#HOOK#{hook_id}[#{shard}]` | `DLV#{epoch_ms:013}-{id}`| —                                         | —                                       | 30 days |
//! | rate-limit bucket          | `A#{aid}#LIMIT`               | `BUCKET`                 | —                                         | —                                       | idle + 1 h |
//! | rate-limit override        | `A#{aid}#LIMIT`               | `POLICY`                 | —                                         | —                                       | — |
//! | delivery guard (AWS)       | `A#{aid}#ONCE#{guard_id}`     | `ONCE`                   | —                                         | —                                       | 30 days |
//! | local delivery job         | `WEBHOOK_QUEUE`               | `{aid}#{hook_id}#{event_id}` | —                                     | —                                       | — |
//! | API client credential      | `CLIENT#{client_id}`          | `CLIENT`                 | —                                         | —                                       | — |
//! | API client register        | `AUTH#CLIENTS`                | `{client_id}`            | —                                         | —                                       | — |
//! | limit override register    | `AUTH#LIMITS`                 | `{aid}`                  | —                                         | —                                       | — |
//! | API client audit trail     | `AUTH#AUDIT`                  | `{at, ns}#{client_id}#{action}#{nonce}` | —                          | —                                       | — |
//! | legacy hashing key (read, never written) | `AUTH#KEYS`     | `CLIENT_HASH`            | —                                         | —                                       | — |
//!
//! Access patterns: get a draft with its events = one query of its partition; list drafts or
//! orders newest first = gsi1 backwards from a cursor; orders of a customer = gsi2; an order by
//! `order_id` = get `ORDERID` then query the order partition; `order_id` uniqueness = a put of
//! the `ORDERID` item conditioned on its absence, in the same transaction as the order.
//!
//! `[#{shard}]`: the list partitions and a subscription's deliveries partition are sharded per
//! account ([`shard_pk`], [`shard_of`]; shard 0 has no suffix, the key of old), as many shards
//! as the account's limit override needs ([`index_shards_for`]): one for every account without
//! one. `infra::sharded` places and reads them; the domain names the unsharded partition.
//!
//! Events travel inside the item they change (see [`crate::outbox`]): a change is one
//! single-item write, and the outbox consumer writes the `EVENT#` history items afterwards.
//! Indexes project only keys, `ttl` and a compact `summary` (not the document), so an index
//! write happens only when one of those changes, and costs one unit.
//! Children carry no `ttl`: an expired header hides them, and its removal cleans them up.

use serde::{Deserialize, Serialize};

/// An item as the storage port sees it. The resource JSON lives in `doc`; the other
/// attributes are keys, the version used for optimistic locking, and the expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2sk: Option<String>,
    /// Epoch seconds after which the item is treated as absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    pub version: u64,
    pub doc: String,
    /// The outbox records riding in this item (see [`crate::outbox`]): a JSON list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<String>,
    /// The compact list summary, the only attribute besides keys and `ttl` that the indexes
    /// hold: an index query returns it with an empty `doc`, version 0 and no events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

impl Item {
    pub fn new(key: Key, version: u64, doc: String) -> Self {
        Self {
            pk: key.pk,
            sk: key.sk,
            gsi1pk: None,
            gsi1sk: None,
            gsi2pk: None,
            gsi2sk: None,
            ttl: None,
            version,
            doc,
            events: None,
            summary: None,
        }
    }

    /// What an index query returns of this item: keys, `ttl` and the summary.
    pub fn projected(&self) -> Self {
        Self { version: 0, doc: String::new(), events: None, ..self.clone() }
    }

    pub fn key(&self) -> Key {
        Key { pk: self.pk.clone(), sk: self.sk.clone() }
    }

    pub fn index_key(&self, index: Index) -> Option<(&str, &str)> {
        match index {
            Index::Gsi1 => Some((self.gsi1pk.as_deref()?, self.gsi1sk.as_deref()?)),
            Index::Gsi2 => Some((self.gsi2pk.as_deref()?, self.gsi2sk.as_deref()?)),
        }
    }

    pub fn is_expired(&self, now_epoch: i64) -> bool {
        self.ttl.is_some_and(|t| t <= now_epoch)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self { pk: pk.into(), sk: sk.into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Index {
    Gsi1,
    Gsi2,
}

impl Index {
    pub fn name(self) -> &'static str {
        match self {
            Self::Gsi1 => "gsi1",
            Self::Gsi2 => "gsi2",
        }
    }
}

/// A condition on the item's current state; an expired item counts as absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    NotExists,
    Exists,
    VersionIs(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    Put { item: Item, cond: Option<Condition> },
    Delete { key: Key, cond: Option<Condition> },
    Check { key: Key, cond: Condition },
}

impl WriteOp {
    pub fn key(&self) -> Key {
        match self {
            Self::Put { item, .. } => item.key(),
            Self::Delete { key, .. } | Self::Check { key, .. } => key.clone(),
        }
    }
}

// ---------------------------------------------------------------- key builders

pub const DRAFT_SK: &str = "DRAFT";
pub const ORDER_SK: &str = "ORDER";
pub const STUB_SK: &str = "STUB";
pub const ORDER_ID_SK: &str = "ID";
pub const EVENT_PREFIX: &str = "EVENT#";

/// The account a key of this table belongs to (`A#{aid}#…`).
pub fn account_of(pk: &str) -> Option<&str> {
    pk.strip_prefix("A#")?.split_once('#').map(|(aid, _)| aid)
}

pub fn draft_pk(aid: &str, id: &str) -> String {
    format!("A#{aid}#D#{id}")
}
pub fn draft_key(aid: &str, id: &str) -> Key {
    Key::new(draft_pk(aid, id), DRAFT_SK)
}
pub fn drafts_index_pk(aid: &str) -> String {
    format!("A#{aid}#DRAFTS")
}
pub fn order_pk(aid: &str, id: &str) -> String {
    format!("A#{aid}#O#{id}")
}
pub fn order_key(aid: &str, id: &str) -> Key {
    Key::new(order_pk(aid, id), ORDER_SK)
}
pub fn orders_index_pk(aid: &str) -> String {
    format!("A#{aid}#ORDERS")
}
pub fn customer_index_pk(aid: &str, customer_id: &str) -> String {
    format!("A#{aid}#C#{customer_id}")
}
pub fn order_id_key(aid: &str, order_id: &str) -> Key {
    Key::new(format!("A#{aid}#ORDERID#{order_id}"), ORDER_ID_SK)
}
pub fn idempotency_key(aid: &str, key: &str) -> Key {
    Key::new(format!("A#{aid}#IDEM#{key}"), IDEM_SK)
}
/// Newest-first lists sort on this: creation time, then id.
pub fn list_sk(created_at: &str, id: &str) -> String {
    format!("{created_at}#{id}")
}
/// The head item's sort key in a resource's partition: `ORDER` for an order, else `DRAFT`.
pub fn head_sk(pk: &str) -> &'static str {
    if pk.contains("#O#") {
        ORDER_SK
    } else {
        DRAFT_SK
    }
}
pub fn event_sk(version: u64) -> String {
    format!("{EVENT_PREFIX}{version:010}")
}
/// The idempotency record's sort key.
pub const IDEM_SK: &str = "IDEM";
/// The sort-key prefix of an order's payment operation items (`PAY#{kind}#{id}`).
pub const OP_PREFIX: &str = "PAY#";
pub fn op_key(aid: &str, order_id: &str, kind: &str, id: &str) -> Key {
    Key::new(order_pk(aid, order_id), format!("{OP_PREFIX}{kind}#{id}"))
}
pub fn hooks_pk(aid: &str) -> String {
    format!("A#{aid}#HOOKS")
}
pub fn hook_key(aid: &str, id: &str) -> Key {
    Key::new(hooks_pk(aid), format!("HOOK#{id}"))
}
pub fn deliveries_pk(aid: &str, hook_id: &str) -> String {
    format!("A#{aid}#HOOK#{hook_id}")
}
/// The sort-key prefix of delivery records.
pub const DELIVERY_SK_PREFIX: &str = "DLV#";
pub fn delivery_key(aid: &str, hook_id: &str, delivery_id: &str) -> Key {
    Key::new(deliveries_pk(aid, hook_id), format!("{DELIVERY_SK_PREFIX}{delivery_id}"))
}
/// The sort key that orders before every delivery made from `epoch_ms` on (delivery ids
/// start with their epoch milliseconds).
pub fn delivery_sk_at(epoch_ms: i64) -> String {
    format!("{DELIVERY_SK_PREFIX}{epoch_ms:013}")
}
/// The sort key of a delivery guard.
pub const GUARD_SK: &str = "ONCE";
/// The guard that lets one round of deliveries of one event to one subscription be sent at
/// most once on AWS (see [`crate::hooks::Guard`]). A partition of its own, not the
/// subscription's deliveries partition: a busy subscription's claims and marks then spread
/// over the table instead of adding to one partition's write rate.
pub fn guard_key(aid: &str, guard_id: &str) -> Key {
    Key::new(format!("A#{aid}#ONCE#{guard_id}"), GUARD_SK)
}
/// The partition of an account's request limit: the shared token bucket
/// ([`crate::ratelimit::Bucket`], sort key `BUCKET`, expiring when idle) and the operator's
/// override of the stack's default limit (sort key `POLICY`).
pub fn limit_pk(aid: &str) -> String {
    format!("A#{aid}#LIMIT")
}
pub fn bucket_key(aid: &str) -> Key {
    Key::new(limit_pk(aid), "BUCKET")
}
pub fn limit_policy_key(aid: &str) -> Key {
    Key::new(limit_pk(aid), "POLICY")
}
/// The operator's register of limit overrides (`tenant show`), one item per account, sort
/// key its id. **Under `AUTH#`**: only the operator reads or writes it (the API functions
/// read an account's own `POLICY` item).
pub const LIMIT_REGISTER_PK: &str = "AUTH#LIMITS";
pub fn limit_register_key(aid: &str) -> Key {
    Key::new(LIMIT_REGISTER_PK, aid)
}
/// The local delivery queue (embedded engine only). **Exception to the account prefix**: one
/// partition the local deliverer polls; each job's sort key starts with its account.
pub const QUEUE_PK: &str = "WEBHOOK_QUEUE";
pub fn queue_key(aid: &str, hook_id: &str, event_id: &str) -> Key {
    Key::new(QUEUE_PK, format!("{aid}#{hook_id}#{event_id}"))
}

/// An API client's credential, read by the token endpoint. **Exception to the account
/// prefix**: the client is looked up by the id the caller presents; its record names its
/// account, which must be the account in the path. Only the token function may read the
/// `CLIENT#` and `AUTH#` partitions (the template's `ClientItemsDenied`).
pub fn client_key(client_id: &str) -> Key {
    Key::new(format!("{CLIENT_PK_PREFIX}{client_id}"), "CLIENT")
}
/// The prefix of every credential's partition (the token role's `dynamodb:LeadingKeys`).
pub const CLIENT_PK_PREFIX: &str = "CLIENT#";
/// The register of API clients (`client list`): one item per client, sort key its id.
pub const CLIENT_REGISTER_PK: &str = "AUTH#CLIENTS";
/// The audit trail of changes to API clients (`client audit`).
pub const CLIENT_AUDIT_PK: &str = "AUTH#AUDIT";
/// Where stacks made before the unkeyed hash kept their secret-hashing key: read to check a
/// client whose secret was hashed with it (once; it is rehashed then), removed by
/// `client migrate`, never written (`domain/DECISIONS.md`, "API client secrets").
pub fn legacy_hash_key() -> Key {
    Key::new("AUTH#KEYS", "CLIENT_HASH")
}

// ------------------------------------------------------------ sharded list partitions

/// The index write units a second one shard of an account's list partition is sized for:
/// half of DynamoDB's 1,000 per partition, so a shard stays under the limit even when its
/// share of a second's writes runs well above the mean.
pub const SHARD_WRITES_PER_SECOND: u32 = 500;

/// How many shards an account's list partitions (`A#{aid}#DRAFTS`, `A#{aid}#ORDERS`) need for
/// a request limit of `rate` a second: every request writes at most one entry of one list
/// (a draft change its draft's, an order change its order's). One up to 500 a second — the
/// default limit's tenants keep today's single partition and pay nothing for sharding.
pub fn index_shards_for(rate: u32) -> u32 {
    rate.div_ceil(SHARD_WRITES_PER_SECOND).max(1)
}

/// The account of `pk` when it is one of the account's list partitions of gsi1 as the domain
/// names it (unsharded): the partitions whose entries the store spreads over shards.
pub fn sharded_list(pk: &str) -> Option<&str> {
    let aid = account_of(pk)?;
    let rest = pk.strip_prefix("A#")?.strip_prefix(aid)?.strip_prefix('#')?;
    matches!(rest, "DRAFTS" | "ORDERS").then_some(aid)
}

/// The account of `pk` when it is a subscription's deliveries partition as the domain names
/// it (`A#{aid}#HOOK#{hook_id}`, unsharded): every attempt of the subscription is recorded
/// there, so the store spreads the records over the account's shards too.
pub fn sharded_deliveries(pk: &str) -> Option<&str> {
    let aid = account_of(pk)?;
    let hook = pk.strip_prefix("A#")?.strip_prefix(aid)?.strip_prefix("#HOOK#")?;
    (!hook.is_empty() && !hook.contains('#')).then_some(aid)
}

/// Shard `shard` of the list partition `list_pk`: shard 0 is the list partition itself (what
/// every entry was written to before sharding, so those entries are found where they are),
/// shard n ≥ 1 is `{list_pk}#{n}`.
pub fn shard_pk(list_pk: &str, shard: u32) -> String {
    if shard == 0 {
        list_pk.to_owned()
    } else {
        format!("{list_pk}#{shard}")
    }
}

/// The shard of the item whose table partition is `item_pk`, out of `shards`: a fixed hash
/// of the partition key, so an item stays in its shard while the count stays (and moves once,
/// on its next write, when the count grows). FNV-1a, written out: its value must never
/// change between builds or Rust versions (std's hashers promise no such thing).
pub fn shard_of(item_pk: &str, shards: u32) -> u32 {
    if shards <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in item_pk.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    u32::try_from(h.checked_rem(u64::from(shards)).unwrap_or(0)).unwrap_or(0)
}

/// The partition a Lambda queries during init to open its connection to the table before the
/// first request needs it. **Exception to the account prefix**: nothing is ever written
/// there (no account id starts with `#`), so the query reads no tenant's data and finds none.
pub const CONNECTION_PROBE_PK: &str = "#connect";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_partitions_shard_with_shard_zero_the_partition_of_old() {
        let aid = "T12345678";
        assert_eq!(sharded_list(&orders_index_pk(aid)), Some(aid));
        assert_eq!(sharded_list(&drafts_index_pk(aid)), Some(aid));
        assert_eq!(sharded_list(&customer_index_pk(aid, "DRAFTS")), None);
        assert_eq!(sharded_list(&shard_pk(&orders_index_pk(aid), 2)), None, "a shard is not sharded again");
        assert_eq!(sharded_list(&hooks_pk(aid)), None);
        assert_eq!(sharded_deliveries(&deliveries_pk(aid, "h-1")), Some(aid));
        assert_eq!(sharded_deliveries(&shard_pk(&deliveries_pk(aid, "h-1"), 3)), None);
        assert_eq!(sharded_deliveries(&hooks_pk(aid)), None);
        assert_eq!(sharded_deliveries(&hook_key(aid, "h-1").pk), None);
        assert_eq!(shard_pk(&orders_index_pk(aid), 0), orders_index_pk(aid));
        assert_eq!(shard_pk(&orders_index_pk(aid), 7), "A#T12345678#ORDERS#7");
        // The default limit (100 a second) and anything up to 500: one partition, as before.
        assert_eq!((index_shards_for(100), index_shards_for(500), index_shards_for(501)), (1, 1, 2));
        assert_eq!(index_shards_for(20_000), 40);
        // Stable across builds: these values are on disk.
        assert_eq!(shard_of(&order_pk(aid, "o"), 1), 0);
        assert_eq!(shard_of("", 7), 0xcbf2_9ce4_8422_2325_u64.rem_euclid(7) as u32);
        let spread: std::collections::BTreeSet<u32> =
            (0..200).map(|k| shard_of(&draft_pk(aid, &k.to_string()), 8)).collect();
        assert_eq!(spread.len(), 8, "every shard is used");
    }

    /// Every key a tenant's item can have starts with its account; the two exceptions are
    /// the ones named at their builders, and even they carry the account where it counts.
    #[test]
    fn every_key_starts_with_the_account_but_the_named_exceptions() {
        let aid = "T12345678";
        let prefix = format!("A#{aid}#");
        let partitions = [
            draft_pk(aid, "d"),
            draft_key(aid, "d").pk,
            drafts_index_pk(aid),
            order_pk(aid, "o"),
            order_key(aid, "o").pk,
            orders_index_pk(aid),
            customer_index_pk(aid, "c"),
            order_id_key(aid, "x").pk,
            idempotency_key(aid, "k").pk,
            op_key(aid, "o", "capture", "p").pk,
            hooks_pk(aid),
            hook_key(aid, "h").pk,
            deliveries_pk(aid, "h"),
            delivery_key(aid, "h", "d").pk,
            guard_key(aid, "g").pk,
            bucket_key(aid).pk,
            limit_policy_key(aid).pk,
        ];
        for pk in partitions {
            assert!(pk.starts_with(&prefix), "{pk}");
        }
        // Exception 1: the local delivery queue is one partition; each job's sort key starts
        // with its account.
        let job = queue_key(aid, "h", "e");
        assert_eq!(job.pk, QUEUE_PK);
        assert!(job.sk.starts_with(&format!("{aid}#")), "{}", job.sk);
        // Exception 2: an API client is found by its id (its record names the account); the
        // operator's items about clients are under `AUTH#`.
        assert!(client_key("cl_1").pk.starts_with(CLIENT_PK_PREFIX));
        for pk in [CLIENT_REGISTER_PK, CLIENT_AUDIT_PK, &legacy_hash_key().pk] {
            assert!(pk.starts_with("AUTH#"), "{pk}");
        }
        // Exception 3: the connection probe's partition cannot be any account's.
        assert!(!CONNECTION_PROBE_PK.starts_with("A#"));
        for s in 0..3 {
            assert!(shard_pk(&orders_index_pk(aid), s).starts_with(&prefix));
        }
        // Account ids are fixed-width, so one account's prefix never begins another's.
        assert!(!draft_pk("T1234567", "d").starts_with(&prefix));
    }
}
