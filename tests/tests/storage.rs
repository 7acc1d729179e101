//! The storage conformance suite: written against the port, run on both engines. The
//! DynamoDB run needs `SHOPPING_TEST_DYNAMODB_ENDPOINT` (the test script starts moto and sets
//! it); without it that test fails loudly rather than skipping.

use domain::table::{Condition, Index, Item, Key, WriteOp};
use infra::clock::ManualClock;
use infra::{Clock, Query, SkCond, Store, StoreError};
use std::sync::Arc;

mod common;

fn item(pk: &str, sk: &str, version: u64) -> Item {
    Item::new(Key::new(pk, sk), version, format!("{{\"v\":{version}}}"))
}

fn put(i: Item, cond: Option<Condition>) -> WriteOp {
    WriteOp::Put { item: i, cond }
}

async fn conformance(store: Arc<dyn Store>, clock: Arc<ManualClock>, ns: &str) {
    let pk = |s: &str| format!("{ns}#{s}");
    // put + get round-trips every attribute
    let mut a = item(&pk("a"), "X", 1);
    a.gsi1pk = Some(pk("idx"));
    a.gsi1sk = Some("2026#a".into());
    store.write(vec![put(a.clone(), Some(Condition::NotExists))]).await.expect("put a");
    assert_eq!(store.get(&a.key()).await.expect("get"), Some(a.clone()));
    assert_eq!(store.get(&Key::new(pk("missing"), "X")).await.expect("get"), None);

    // riding events and the summary round-trip; an index returns only keys, ttl and summary
    let mut r = item(&pk("ride"), "X", 3);
    r.events = Some(r#"[{"event":{"version":3},"webhooks":["shopping_draft_update"]}]"#.into());
    r.summary = Some(r#"{"status":"open"}"#.into());
    r.gsi1pk = Some(pk("rideidx"));
    r.gsi1sk = Some("2026#r".into());
    store.write(vec![put(r.clone(), None)]).await.expect("put riding");
    assert_eq!(store.get(&r.key()).await.expect("get riding"), Some(r.clone()));
    let iq = Query { index: Some(Index::Gsi1), ..Query::partition(pk("rideidx")) };
    assert_eq!(store.query(&iq).await.expect("index").items, vec![r.projected()]);

    // get_many: live items only, each once, whatever the order or repetition of the keys
    let mut got = store.get_many(&[r.key(), Key::new(pk("missing"), "X"), a.key(), r.key()]).await.expect("get_many");
    got.sort_by(|x, y| x.pk.cmp(&y.pk));
    let mut want = vec![a.clone(), r.clone()];
    want.sort_by(|x, y| x.pk.cmp(&y.pk));
    assert_eq!(got, want);
    assert!(store.get_many(&[]).await.expect("empty").is_empty());

    // large documents (stored compressed by DynamoDB) and non-ASCII text round-trip exactly
    let big_doc = format!("{{\"text\":\"{}\"}}", "Blåbærsyltetøy — 12 × 35 cl. ".repeat(400));
    let big = Item::new(Key::new(pk("big"), "X"), 1, big_doc);
    store.write(vec![put(big.clone(), None)]).await.expect("put big");
    assert_eq!(store.get(&big.key()).await.expect("get big"), Some(big.clone()));
    let q = store.query(&Query::partition(pk("big"))).await.expect("query big");
    assert_eq!(q.items, vec![big]);

    // NotExists fails on an existing item and reports the op and the current item
    let err = store.write(vec![put(item(&pk("a"), "X", 9), Some(Condition::NotExists))]).await.unwrap_err();
    match err {
        StoreError::ConditionFailed { index: 0, current } => assert_eq!(current.map(|c| c.version), Some(1)),
        other => panic!("expected condition failure, got {other:?}"),
    }

    // VersionIs guards updates
    store.write(vec![put(item(&pk("a"), "X", 2), Some(Condition::VersionIs(1)))]).await.expect("v1->v2");
    assert!(matches!(
        store.write(vec![put(item(&pk("a"), "X", 3), Some(Condition::VersionIs(1)))]).await,
        Err(StoreError::ConditionFailed { index: 0, .. })
    ));

    // a multi-item write is atomic: the failing second op leaves the first unwritten
    let err = store
        .write(vec![
            put(item(&pk("b"), "X", 1), Some(Condition::NotExists)),
            put(item(&pk("a"), "X", 5), Some(Condition::VersionIs(99))),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ConditionFailed { index: 1, .. }), "{err:?}");
    assert_eq!(store.get(&Key::new(pk("b"), "X")).await.expect("get"), None);

    // checks, deletes and puts together
    store
        .write(vec![
            WriteOp::Check { key: Key::new(pk("a"), "X"), cond: Condition::VersionIs(2) },
            put(item(&pk("b"), "X", 1), Some(Condition::NotExists)),
        ])
        .await
        .expect("check+put");
    store
        .write(vec![WriteOp::Delete { key: Key::new(pk("b"), "X"), cond: Some(Condition::Exists) }])
        .await
        .expect("delete");
    assert_eq!(store.get(&Key::new(pk("b"), "X")).await.expect("get"), None);
    assert!(matches!(
        store.write(vec![WriteOp::Delete { key: Key::new(pk("b"), "X"), cond: Some(Condition::Exists) }]).await,
        Err(StoreError::ConditionFailed { .. })
    ));
    // the same item twice in one write is refused by both engines
    assert!(matches!(
        store.write(vec![put(item(&pk("c"), "X", 1), None), put(item(&pk("c"), "X", 2), None)]).await,
        Err(StoreError::Invalid(_))
    ));

    // DynamoDB's limits, refused alike by both engines, as limits (never as unavailability)
    let huge = Item::new(Key::new(pk("huge"), "X"), 1, common::noise(560_000, 7));
    let r = store.write(vec![put(huge, None)]).await;
    assert!(matches!(r, Err(StoreError::Limit(infra::Limit::ItemTooLarge { .. }))), "{r:?}");
    assert_eq!(store.get(&Key::new(pk("huge"), "X")).await.expect("get"), None);
    let mut long_key = item(&pk("lk"), "X", 1);
    long_key.gsi2pk = Some("c".repeat(2049));
    long_key.gsi2sk = Some("s".into());
    assert!(matches!(
        store.write(vec![put(long_key, None)]).await,
        Err(StoreError::Limit(infra::Limit::KeyTooLong { attribute: "gsi2pk", .. }))
    ));
    assert!(matches!(
        store.write(vec![put(item(&pk("lk2"), &"s".repeat(1025), 1), None)]).await,
        Err(StoreError::Limit(infra::Limit::KeyTooLong { attribute: "sk", .. }))
    ));
    let many: Vec<WriteOp> = (0..101).map(|n| put(item(&pk(&format!("m{n}")), "X", 1), None)).collect();
    assert!(matches!(store.write(many).await, Err(StoreError::Limit(infra::Limit::TooManyItems { count: 101 }))));

    // ordered range scans with prefix, direction, limit and cursor
    let part = pk("p");
    let writes: Vec<_> = (0..7).map(|i| put(item(&part, &format!("EVENT#{i:03}"), i), None)).collect();
    store.write(writes).await.expect("events");
    store.write(vec![put(item(&part, "HEAD", 0), None)]).await.expect("head");
    let mut q = Query { sk: SkCond::BeginsWith("EVENT#".into()), limit: 3, ..Query::partition(&part) };
    let mut seen = Vec::new();
    loop {
        let page = store.query(&q).await.expect("query");
        seen.extend(page.items.iter().map(|i| i.sk.clone()));
        match page.next {
            Some(c) => q.start_after = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("EVENT#{i:03}")).collect::<Vec<_>>());
    let back = store
        .query(&Query { sk: SkCond::Lt("EVENT#003".into()), forward: false, limit: 10, ..Query::partition(&part) })
        .await
        .expect("backwards");
    assert_eq!(back.items.iter().map(|i| i.sk.as_str()).collect::<Vec<_>>(), ["EVENT#002", "EVENT#001", "EVENT#000"]);
    let between = store
        .query(&Query { sk: SkCond::Between("EVENT#002".into(), "EVENT#004".into()), ..Query::partition(&part) })
        .await
        .expect("between");
    assert_eq!(between.items.len(), 3);

    // index queries, newest first, paged without gaps or duplicates
    let idx = pk("list");
    for i in 0..5u64 {
        let mut it = item(&pk(&format!("o{i}")), "ORDER", 0);
        it.gsi1pk = Some(idx.clone());
        it.gsi1sk = Some(format!("2026-01-0{i}#{i}"));
        store.write(vec![put(it, None)]).await.expect("indexed");
    }
    let mut q = Query { index: Some(Index::Gsi1), forward: false, limit: 2, ..Query::partition(&idx) };
    let mut seen = Vec::new();
    loop {
        let page = store.query(&q).await.expect("index query");
        seen.extend(page.items.iter().map(|i| i.gsi1sk.clone().unwrap_or_default()));
        match page.next {
            Some(c) => q.start_after = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ["2026-01-04#4", "2026-01-03#3", "2026-01-02#2", "2026-01-01#1", "2026-01-00#0"]);

    // TTL: expired items are invisible to get, query and conditions
    let now = clock.epoch();
    let mut t = item(&pk("ttl"), "X", 1);
    t.ttl = Some(now + 10);
    t.gsi1pk = Some(pk("ttlidx"));
    t.gsi1sk = Some("1".into());
    store.write(vec![put(t.clone(), None)]).await.expect("ttl put");
    assert!(store.get(&t.key()).await.expect("get").is_some());
    clock.advance(11);
    assert_eq!(store.get(&t.key()).await.expect("get"), None);
    assert!(store.query(&Query::partition(pk("ttl"))).await.expect("q").items.is_empty());
    let iq = Query { index: Some(Index::Gsi1), ..Query::partition(pk("ttlidx")) };
    assert!(store.query(&iq).await.expect("iq").items.is_empty());
    assert!(matches!(
        store.write(vec![put(item(&pk("ttl"), "X", 2), Some(Condition::VersionIs(1)))]).await,
        Err(StoreError::ConditionFailed { .. })
    ));
    store
        .write(vec![put(item(&pk("ttl"), "X", 1), Some(Condition::NotExists))])
        .await
        .expect("expired counts as absent");

    // independent writes: each atomic on its own, results in order, a failed one leaves no
    // trace and does not stop the others; later writes see the earlier ones
    let (w1, w2) = (item(&pk("each"), "1", 1), item(&pk("each"), "2", 1));
    let mut w3 = item(&pk("each"), "3", 1);
    w3.events = Some(r#"[{"event":{"version":1},"webhooks":[]}]"#.into());
    let results = store
        .write_each(vec![
            vec![put(w1.clone(), Some(Condition::NotExists))],
            vec![put(w2.clone(), None), put(item(&pk("each"), "1", 9), Some(Condition::NotExists))],
            vec![put(w3.clone(), None)],
            vec![put(item(&pk("each"), "1", 2), Some(Condition::VersionIs(1)))],
            vec![put(item(&pk("each"), "4", 1), None), put(item(&pk("each"), "4", 2), None)],
        ])
        .await;
    assert_eq!(results.len(), 5);
    assert!(results[0].is_ok() && results[2].is_ok() && results[3].is_ok(), "{results:?}");
    assert!(matches!(results[1], Err(StoreError::ConditionFailed { index: 1, .. })), "{results:?}");
    assert!(matches!(results[4], Err(StoreError::Invalid(_))), "{results:?}");
    let each = store.query(&Query::partition(pk("each"))).await.expect("each").items;
    assert_eq!(each.iter().map(|i| (i.sk.as_str(), i.version)).collect::<Vec<_>>(), [("1", 2), ("3", 1)]);
    assert!(store.write_each(Vec::new()).await.is_empty());
}

/// Many writers on one item, each read-modify-write conditioned on the version it read:
/// every increment lands exactly once.
async fn no_lost_update(store: Arc<dyn Store>, ns: &str, writers: usize, each: usize) {
    let key = Key::new(format!("{ns}#counter"), "X");
    store.write(vec![put(Item::new(key.clone(), 0, "0".into()), None)]).await.expect("seed");
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let store = store.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < each {
                let cur = store.get(&key).await.expect("get").expect("exists");
                let n: u64 = cur.doc.parse().expect("number");
                let next = Item::new(key.clone(), cur.version + 1, (n + 1).to_string());
                match store.write(vec![put(next, Some(Condition::VersionIs(cur.version)))]).await {
                    Ok(()) => done += 1,
                    Err(StoreError::ConditionFailed { .. } | StoreError::Contention) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let end = store.get(&key).await.expect("get").expect("exists");
    assert_eq!(end.doc, (writers * each).to_string());
    assert_eq!(end.version as usize, writers * each);
}

/// The same on an order-shaped change: header conditioned on the version read plus a new
/// event item, in one transaction, as every order write does.
async fn no_lost_update_in_transactions(store: Arc<dyn Store>, writers: usize, each: usize) {
    let aid = "T12345678";
    let header = domain::table::order_key(aid, "order-1");
    store.write(vec![put(Item::new(header.clone(), 0, "0".into()), None)]).await.expect("seed");
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let store = store.clone();
        let header = header.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = 0;
            while done < each {
                let cur = store.get(&header).await.expect("get").expect("exists");
                let v = cur.version + 1;
                let event = Key::new(header.pk.clone(), domain::table::event_sk(v));
                let ops = vec![
                    put(Item::new(header.clone(), v, v.to_string()), Some(Condition::VersionIs(cur.version))),
                    put(Item::new(event, v, "{}".into()), Some(Condition::NotExists)),
                ];
                match store.write(ops).await {
                    Ok(()) => done += 1,
                    Err(StoreError::ConditionFailed { .. } | StoreError::Contention) => {}
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let n = (writers * each) as u64;
    assert_eq!(store.get(&header).await.expect("get").map(|i| i.version), Some(n));
    let q = Query { sk: SkCond::BeginsWith("EVENT#".into()), ..Query::partition(&header.pk) };
    let events = store.query(&q).await.expect("events").items;
    assert_eq!(events.iter().map(|e| e.version).collect::<Vec<_>>(), (1..=n).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_engine_conforms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let store: Arc<dyn Store> =
        Arc::new(infra::sqlite::SqliteStore::open(&dir.path().join("s.db"), clock.clone()).expect("open"));
    conformance(store.clone(), clock, "t").await;
    no_lost_update(store.clone(), "t", 8, 25).await;
    no_lost_update_in_transactions(store, 8, 25).await;
}

/// The embedded engine's sweep removes expired items physically, like DynamoDB's TTL, and
/// nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sweep_removes_only_expired_items() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let store = infra::sqlite::SqliteStore::open(&dir.path().join("s.db"), clock.clone()).expect("open");
    let mut expiring = item("P", "A", 0);
    expiring.ttl = Some(1_800_000_100);
    store.write(vec![put(expiring, None), put(item("P", "B", 0), None)]).await.expect("write");
    assert_eq!(store.sweep().await.expect("sweep"), 0);
    clock.advance(100);
    assert_eq!(store.sweep().await.expect("sweep"), 1);
    assert_eq!(store.sweep().await.expect("sweep"), 0);
    assert!(store.get(&Key::new("P", "B")).await.expect("get").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_engine_is_durable_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.db");
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    {
        let store = infra::sqlite::SqliteStore::open(&path, clock.clone()).expect("open");
        store.write(vec![put(item("p", "s", 1), None)]).await.expect("put");
    }
    let store = infra::sqlite::SqliteStore::open(&path, clock).expect("reopen");
    assert_eq!(store.get(&Key::new("p", "s")).await.expect("get").map(|i| i.version), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_engine_conforms() {
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let store = common::dynamo_store(clock.clone()).await;
    conformance(store.clone(), clock, "t").await;
    no_lost_update(store.clone(), "t", 6, 5).await;
    no_lost_update_in_transactions(store, 6, 5).await;
}

/// One generated write: up to three ops on a small key space, each with a random condition.
#[derive(Debug, Clone)]
enum GenOp {
    Put(u8, u64, Option<Condition>),
    Delete(u8, Option<Condition>),
    Check(u8, Condition),
}

fn gen_cond() -> impl proptest::strategy::Strategy<Value = Condition> {
    use proptest::prelude::*;
    prop_oneof![Just(Condition::NotExists), Just(Condition::Exists), (0u64..4).prop_map(Condition::VersionIs)]
}

fn gen_write() -> impl proptest::strategy::Strategy<Value = Vec<GenOp>> {
    use proptest::prelude::*;
    let op = prop_oneof![
        3 => (0u8..4, 0u64..4, proptest::option::of(gen_cond())).prop_map(|(k, v, c)| GenOp::Put(k, v, c)),
        1 => (0u8..4, proptest::option::of(gen_cond())).prop_map(|(k, c)| GenOp::Delete(k, c)),
        1 => (0u8..4, gen_cond()).prop_map(|(k, c)| GenOp::Check(k, c)),
    ];
    proptest::collection::vec(op, 1..4)
}

/// Model-based: random atomic writes applied to a store and to a map must agree — which
/// writes succeed, which op's condition failed, and every item afterwards.
fn store_matches_its_model(make: impl Fn(&tokio::runtime::Runtime) -> Arc<dyn Store>, cases: u32) {
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    use std::collections::HashMap;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = make(&rt);
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 50, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let run = std::sync::atomic::AtomicU32::new(0);
    let result = runner.run(&proptest::collection::vec(gen_write(), 1..10), |writes| {
        // Each case gets its own partition prefix on the shared store.
        let ns = run.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let key = |k: u8| Key::new(format!("prop{ns}#{k}"), "X");
        let mut model: HashMap<u8, u64> = HashMap::new();
        for w in writes {
            let holds = |k: u8, c: Condition, m: &HashMap<u8, u64>| match c {
                Condition::NotExists => !m.contains_key(&k),
                Condition::Exists => m.contains_key(&k),
                Condition::VersionIs(v) => m.get(&k) == Some(&v),
            };
            let keys: Vec<u8> = w
                .iter()
                .map(|o| match o {
                    GenOp::Put(k, ..) | GenOp::Delete(k, _) | GenOp::Check(k, _) => *k,
                })
                .collect();
            let duplicate = keys.iter().enumerate().any(|(i, k)| keys[..i].contains(k));
            let failing = w.iter().position(|o| match o {
                GenOp::Put(k, _, Some(c)) | GenOp::Delete(k, Some(c)) | GenOp::Check(k, c) => !holds(*k, *c, &model),
                _ => false,
            });
            let ops: Vec<WriteOp> = w
                .iter()
                .map(|o| match o {
                    GenOp::Put(k, v, c) => put(item(&key(*k).pk, "X", *v), *c),
                    GenOp::Delete(k, c) => WriteOp::Delete { key: key(*k), cond: *c },
                    GenOp::Check(k, c) => WriteOp::Check { key: key(*k), cond: *c },
                })
                .collect();
            let got = rt.block_on(store.write(ops));
            match (duplicate, failing, got) {
                (true, _, Err(StoreError::Invalid(_))) => {}
                (false, Some(i), Err(StoreError::ConditionFailed { index, .. })) if index == i => {}
                (false, None, Ok(())) => {
                    for o in &w {
                        match o {
                            GenOp::Put(k, v, _) => {
                                model.insert(*k, *v);
                            }
                            GenOp::Delete(k, _) => {
                                model.remove(k);
                            }
                            GenOp::Check(..) => {}
                        }
                    }
                }
                (d, f, got) => {
                    return Err(TestCaseError::fail(format!("duplicate {d}, failing {f:?}, store said {got:?}")))
                }
            }
            for k in 0..4u8 {
                let stored = rt.block_on(store.get(&key(k))).map_err(|e| TestCaseError::fail(e.to_string()))?;
                if stored.map(|i| i.version) != model.get(&k).copied() {
                    return Err(TestCaseError::fail(format!("item {k} differs from the model")));
                }
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn sqlite_engine_matches_its_model() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.db");
    store_matches_its_model(
        |_| {
            let clock = Arc::new(ManualClock::at(1_800_000_000));
            Arc::new(infra::sqlite::SqliteStore::open(&path, clock).expect("open"))
        },
        256,
    );
}

/// Fewer cases: the emulator answers about a hundred calls a second.
#[test]
fn dynamodb_engine_matches_its_model() {
    store_matches_its_model(
        |rt| {
            let clock = Arc::new(ManualClock::at(1_800_000_000));
            rt.block_on(common::dynamo_store(clock))
        },
        24,
    );
}
