//! Request bodies to typed values, reporting every problem at once.
//!
//! serde stops at the first type error. To list them all, the body is parsed to a JSON value
//! and decoded into the typed model repeatedly: each failure is recorded with its JSON path,
//! the offending value is taken out of the way (removed, or replaced by a neutral value of
//! another shape when the field is required), and decoding goes on. The model's own derive
//! is the schema, so the check can never drift from the types. The rule checks of
//! [`crate::validate`] then run on what did decode, and both lists are answered together.

use crate::error::{DomainError, FieldError};
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

/// More type errors than this in one body are not worth listing one by one.
const MAX_TYPE_ERRORS: usize = 32;
/// Values tried, in order, in place of a required value of the wrong type.
fn neutral(n: usize) -> Option<Value> {
    [Value::Object(Default::default()), Value::Array(Vec::new()), Value::from(0), Value::from(""), Value::from(false)]
        .get(n)
        .cloned()
}

/// Decodes `raw` as `T`. With no type errors the value is returned and the caller's command
/// validates it as usual. With type errors, `rules` also runs on what did decode, and every
/// problem is returned; a rule error at or under a path that already has a type error is
/// dropped (the field was wrong to begin with).
pub fn decode<T: DeserializeOwned>(
    raw: &[u8],
    rules: impl Fn(&T) -> Result<(), DomainError>,
) -> Result<T, DomainError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(DomainError::Validation(vec![FieldError::new("body", "REQUIRED", "a JSON object is required")]));
    }
    // The usual case, a body that decodes: straight from its text, so that free-form values
    // keep every number as written (through a value tree, `-0` would come back as `0`).
    if raw.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        if let Ok(t) = serde_json::from_slice::<T>(raw) {
            return Ok(t);
        }
    }
    let mut value: Value = serde_json::from_slice(raw).map_err(|e| {
        DomainError::Validation(vec![FieldError::new("body", "INVALID_JSON", format!("is not valid JSON: {e}"))])
    })?;
    if !value.is_object() {
        return Err(DomainError::Validation(vec![FieldError::new("body", "INVALID_TYPE", "must be a JSON object")]));
    }
    let mut errors: Vec<FieldError> = Vec::new();
    // How many neutral values each path has been given so far.
    let mut tries: Vec<(String, usize)> = Vec::new();
    let decoded = loop {
        let err = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(t) => break Some(t),
            Err(e) => e,
        };
        let inner = err.inner().to_string();
        let mut target: Vec<Segment> = err.path().iter().cloned().collect();
        let missing = inner.strip_prefix("missing field `").and_then(|r| r.split('`').next()).map(str::to_owned);
        if let Some(field) = &missing {
            target.push(Segment::Map { key: field.clone() });
        }
        let path = display(&target);
        if !errors.iter().any(|e| e.path == path) {
            let (code, message) = match missing {
                Some(_) => ("REQUIRED", "is required".to_owned()),
                None => ("INVALID_TYPE", inner),
            };
            errors.push(FieldError::new(path, code, message));
        }
        if errors.len() >= MAX_TYPE_ERRORS || !neutralize(&mut value, &target, &mut tries) {
            break None;
        }
    };
    match decoded {
        Some(t) if errors.is_empty() => Ok(t),
        Some(t) => {
            if let Err(DomainError::Validation(more)) = rules(&t) {
                let covered = |p: &str| {
                    errors.iter().any(|e| {
                        p == e.path
                            || p.strip_prefix(e.path.as_str()).is_some_and(|r| r.starts_with('.') || r.starts_with('['))
                    })
                };
                let extra: Vec<FieldError> = more.into_iter().filter(|m| !covered(&m.path)).collect();
                errors.extend(extra);
            }
            Err(DomainError::Validation(errors))
        }
        None => Err(DomainError::Validation(errors)),
    }
}

/// A JSON path as the API reports it: `order.items[0].gross_amount`; the root is `body`.
fn display(segs: &[Segment]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => out.push_str(".?"),
        }
    }
    if out.is_empty() {
        "body".to_owned()
    } else {
        out
    }
}

/// Takes the value at `target` out of the way: an object member is removed first; a required
/// member or an array element gets neutral values of each shape in turn. `false` when nothing
/// more can be tried (the root itself is wrong, or every shape failed).
fn neutralize(root: &mut Value, target: &[Segment], tries: &mut Vec<(String, usize)>) -> bool {
    let Some((last, parent_path)) = target.split_last() else { return false };
    let Some(parent) = walk(root, parent_path) else { return false };
    let key = display(target);
    let n = match tries.iter_mut().find(|(p, _)| *p == key) {
        Some((_, n)) => {
            *n = n.saturating_add(1);
            *n
        }
        None => {
            tries.push((key, 0));
            0
        }
    };
    match (parent, last) {
        (Value::Object(map), Segment::Map { key }) => {
            if n == 0 && map.remove(key).is_some() {
                return true;
            }
            // Required (serde reported it missing, or removing did not help): a neutral value.
            let Some(v) = neutral(n.saturating_sub(1)) else { return false };
            map.insert(key.clone(), v);
            true
        }
        (Value::Array(items), Segment::Seq { index }) => match (items.get_mut(*index), neutral(n)) {
            (Some(slot), Some(v)) => {
                *slot = v;
                true
            }
            _ => false,
        },
        _ => false,
    }
}

fn walk<'a>(mut v: &'a mut Value, segs: &[Segment]) -> Option<&'a mut Value> {
    for s in segs {
        v = match (v, s) {
            (Value::Object(m), Segment::Map { key }) => m.get_mut(key)?,
            (Value::Array(a), Segment::Seq { index }) => a.get_mut(*index)?,
            _ => return None,
        };
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draft::{DraftBody, DraftRecord};
    use crate::model::Order;

    /// Orders and stored drafts are one flat JSON object on the wire and in the table, however
    /// the types nest their parts.
    #[test]
    fn embedded_structs_read_and_write_one_flat_object() {
        let doc = r#"{"id":"o1","created_at":"2026-01-01T00:00:00.000Z","updated_at":"2026-01-01T00:00:00.000Z",
            "status":"open","currency":"NOK","items":[{"line_id":1,"gross_amount":100}],"unknown":true}"#;
        let order: Order = serde_json::from_str(doc).expect("order");
        assert_eq!(order.id, "o1");
        assert_eq!(order.content.currency.as_deref(), Some("NOK"));
        assert_eq!(order.content.items.as_ref().map(Vec::len), Some(1));
        let back = serde_json::to_value(&order).expect("write");
        assert_eq!((back["currency"].as_str(), back["id"].as_str()), (Some("NOK"), Some("o1")));
        assert!(back.get("content").is_none() && back.get("unknown").is_none());
        // A wrong type inside the embedded part is an error, not a silently empty order.
        assert!(serde_json::from_str::<Order>(&doc.replace(r#""currency":"NOK""#, r#""currency":7"#)).is_err());

        let rec = r#"{"id":"d1","created_at":"t","created_by":"me","updated_at":"t","status":"completed",
            "order":{"currency":"SEK"},"order_ids":["o1"]}"#;
        let rec: DraftRecord = serde_json::from_str(rec).expect("draft record");
        assert_eq!((rec.draft.id.as_str(), rec.order_ids.as_slice()), ("d1", ["o1".to_owned()].as_slice()));
        let back = serde_json::to_value(&rec).expect("write");
        assert_eq!((back["status"].as_str(), back["order"]["currency"].as_str()), (Some("completed"), Some("SEK")));
        assert_eq!(back["order_ids"][0], "o1");
    }

    fn paths(r: Result<DraftBody, DomainError>) -> Vec<String> {
        match r {
            Err(DomainError::Validation(e)) => e.into_iter().map(|e| e.path).collect(),
            other => panic!("expected validation errors, got {other:?}"),
        }
    }

    fn rules(b: &DraftBody) -> Result<(), DomainError> {
        crate::validate::draft_body(&b.options.clone().unwrap_or_default(), &b.order)
    }

    #[test]
    fn lists_type_errors_and_rule_errors_together() {
        let raw = br#"{"order":{"currency":"NOK","items":[
            {"gross_amount":"12","tax_lines":[{"percentage":25}]},
            {"gross_amount":5},
            {"gross_amount":1,"tax_lines":[{"percentage":"x"}],"quantity":true}]}}"#;
        assert_eq!(
            paths(decode(raw, rules)),
            // Type errors in the order of the body, then the rules' errors.
            [
                "order.items[0].gross_amount",
                "order.items[2].tax_lines[0].percentage",
                "order.items[2].quantity",
                "order.items[1].tax_lines",
            ]
        );
    }

    #[test]
    fn wrong_shapes_of_required_members_and_elements_are_reported() {
        assert_eq!(paths(decode(br#"{"options":{}}"#, rules)), ["order"]);
        assert_eq!(paths(decode(br#"{"order":7}"#, rules)), ["order"]);
        assert_eq!(
            paths(decode(
                br#"{"order":{"currency":"NOK","items":["x",{"gross_amount":1,"tax_lines":[{"percentage":1}]}]}}"#,
                rules
            )),
            ["order.items[0]"]
        );
        assert_eq!(paths(decode(br#"[1,2]"#, rules)), ["body"]);
        assert_eq!(paths(decode(b"{oops", rules)), ["body"]);
        assert_eq!(paths(decode(b"  ", rules)), ["body"]);
    }

    #[test]
    fn a_clean_body_decodes_without_running_the_rules() {
        let b = decode(br#"{"order":{"currency":"nok"}}"#, rules).expect("decodes");
        assert_eq!(b.order.currency.as_deref(), Some("nok"));
    }
}
