//! How the model writes the values a strict client types most narrowly: numbers that are not
//! integers by nature, and the arrays the upstream always shows (DECISIONS.md, "Numbers on the
//! wire" and "Arrays are always there").

use serde::Serializer;
use std::cell::Cell;

thread_local! {
    /// Set while [`to_stored`] serialises on this thread.
    static STORING: Cell<bool> = const { Cell::new(false) };
}

/// A document as the store keeps it: like the wire, but without the arrays that are empty
/// (they read back as none and are written `[]` again): every write unit is the tenant's.
/// Serialisation is synchronous, so the mode cannot leak into another document's.
pub fn to_stored<T: serde::Serialize>(v: &T) -> serde_json::Result<String> {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            STORING.with(|s| s.set(false));
        }
    }
    STORING.with(|s| s.set(true));
    let _reset = Reset;
    serde_json::to_string(v)
}

/// `skip_serializing_if` of the arrays [`list`] writes: only an empty one, only when stored.
pub(super) fn unstored<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_none_or(Vec::is_empty) && STORING.with(Cell::get)
}

/// A quantity, percentage, coordinate or measure (`#[serde(with)]`): written as the
/// upstream writes it, read from any JSON number.
pub(super) mod number {
    use serde::de::{self, Deserializer, MapAccess, Visitor};
    use serde::Serializer;
    use std::fmt;

    /// Integers beyond this are not exactly representable as `f64`, so `as i64` would guess.
    const EXACT: f64 = 9_007_199_254_740_992.0;

    /// A whole value without a fraction (`2`, `25`, `0`), any other as the shortest decimal
    /// that reads back as the same `f64` (`2.5`).
    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match *v {
            Some(f) if f.fract() == 0.0 && f.abs() < EXACT => s.serialize_i64(f as i64),
            Some(f) => s.serialize_f64(f),
            None => s.serialize_none(),
        }
    }

    /// Any JSON number. serde_json keeps a number's text (free-form values round-trip, see
    /// the workspace manifest) and hands one it cannot give back exactly as an `f64` (`1.50`,
    /// `1e3`) as that text: it is read here, also where serde buffers a flattened struct.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        d.deserialize_option(Opt)
    }

    struct Opt;
    struct Num;

    impl<'de> Visitor<'de> for Opt {
        type Value = Option<f64>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(Num).map(Some)
        }
        // A buffered (flattened) value comes without its option wrapper.
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Num.visit_f64(v).map(Some)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Num.visit_i64(v).map(Some)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Num.visit_u64(v).map(Some)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Num.visit_map(map).map(Some)
        }
    }

    impl<'de> Visitor<'de> for Num {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_i128<E: de::Error>(self, v: i128) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u128<E: de::Error>(self, v: u128) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<f64, A::Error> {
            let n: serde_json::Number =
                serde::Deserialize::deserialize(de::value::MapAccessDeserializer::new(&mut map))?;
            n.as_f64().filter(|f| f.is_finite()).ok_or_else(|| de::Error::custom("expected a number"))
        }
    }
}

/// A text the upstream always shows: `""` when there is none.
pub(super) fn text<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.as_deref().unwrap_or_default())
}

/// An array of the resource: `[]` when there is none, never absent.
pub(super) fn list<T: serde::Serialize, S: Serializer>(v: &Option<Vec<T>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(items) => s.collect_seq(items),
        None => s.collect_seq(std::iter::empty::<&T>()),
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Itinerary, OrderItem, TaxLine};
    use serde_json::json;

    #[test]
    fn whole_numbers_are_written_without_a_fraction() {
        let item: OrderItem = serde_json::from_value(json!({
            "quantity": 2.0, "tax_lines": [{"percentage": 25}, {"percentage": 12.5}, {"percentage": -0.0}]
        }))
        .unwrap();
        let text = serde_json::to_string(&item).unwrap();
        assert!(text.contains(r#""quantity":2,"#), "{text}");
        assert!(text.contains(r#"[{"percentage":25},{"percentage":12.5},{"percentage":0}]"#), "{text}");
        let it: Itinerary = serde_json::from_value(json!({"distance": {"value": 1e21}})).unwrap();
        let text = serde_json::to_string(&it).unwrap();
        // Beyond exact integers: serde_json's shortest form, still no `.0`.
        assert!(text.contains(r#""distance":{"value":1e+21}"#), "{text}");
    }

    #[test]
    fn any_number_form_reads_also_in_a_flattened_order() {
        let text = r#"{"id":"o","created_at":"t","updated_at":"t","items":[{"quantity":1.50},{"quantity":1e3},{"quantity":2}],"metadata":{"n":1e3}}"#;
        let order: crate::model::Order = serde_json::from_str(text).unwrap();
        let q: Vec<Option<f64>> = order.content.items.iter().flatten().map(|i| i.quantity).collect();
        assert_eq!(q, [Some(1.5), Some(1000.0), Some(2.0)]);
        let back = serde_json::to_string(&order).unwrap();
        assert!(back.contains(r#""quantity":1.5,"#) && back.contains(r#""quantity":1000,"#), "{back}");
        let from_value: crate::model::OrderItem = serde_json::from_value(serde_json::json!({"quantity": 1.5})).unwrap();
        assert_eq!(from_value.quantity, Some(1.5));
        let refused = serde_json::from_str::<crate::model::OrderItem>(r#"{"quantity":"2"}"#).unwrap_err();
        assert!(refused.to_string().contains("expected a number"), "{refused}");
    }

    #[test]
    fn arrays_are_written_when_empty() {
        let text = serde_json::to_string(&OrderItem::default()).unwrap();
        for key in ["groups", "tax_lines", "discount_lines", "additions"] {
            assert!(text.contains(&format!(r#""{key}":[]"#)), "{key} in {text}");
        }
        assert_eq!(serde_json::to_string(&TaxLine::default()).unwrap(), "{}");
        // As stored: without them, and reading back the same.
        let stored = super::to_stored(&OrderItem { groups: Some(Vec::new()), ..Default::default() }).unwrap();
        assert!(!stored.contains("[]"), "{stored}");
        assert_eq!(serde_json::from_str::<OrderItem>(&stored).unwrap().groups, None);
        assert_eq!(serde_json::to_string(&OrderItem::default()).unwrap(), text, "the wire again after storing");
    }
}
