//! Field masks over a delivered resource, as the upstream Hooks API's `fields` and
//! `exclude_fields` write them: `a,b` several fields, `a/b/c` a nested field, `a(b,c)` a
//! sub-selection (which nests: `order(id,items(line_id))`). Arrays are masked element by
//! element. A malformed mask is refused when the subscription is written, never at delivery.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A parsed `fields` mask: each selected key and what of it is selected (empty: all of it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mask(BTreeMap<String, Mask>);

const MAX_LEN: usize = 2048;

fn is_name(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

impl Mask {
    /// Parses a mask; the error says where it is malformed.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() > MAX_LEN {
            return Err(format!("must be at most {MAX_LEN} characters"));
        }
        let chars: Vec<char> = s.chars().collect();
        let mut pos = 0;
        let mask = Self::list(&chars, &mut pos, 0)?;
        if pos != chars.len() {
            return Err(format!("unexpected `{}` at {pos}", chars.get(pos).copied().unwrap_or(' ')));
        }
        Ok(mask)
    }

    fn list(c: &[char], pos: &mut usize, depth: usize) -> Result<Self, String> {
        if depth > 16 {
            return Err("nests too deeply".into());
        }
        let mut out = Self::default();
        loop {
            let (name, sub) = Self::term(c, pos, depth)?;
            out.merge(name, sub);
            if c.get(*pos) == Some(&',') {
                *pos = pos.saturating_add(1);
                continue;
            }
            return Ok(out);
        }
    }

    /// One `a/b/c` or `a(…)` term, as its first key and the rest.
    fn term(c: &[char], pos: &mut usize, depth: usize) -> Result<(String, Self), String> {
        let start = *pos;
        while c.get(*pos).copied().is_some_and(is_name) {
            *pos = pos.saturating_add(1);
        }
        if start == *pos {
            return Err(match c.get(*pos) {
                Some(ch) => format!("expected a field name at {start}, found `{ch}`"),
                None => format!("expected a field name at {start}"),
            });
        }
        let name: String = c.get(start..*pos).unwrap_or_default().iter().collect();
        let sub = match c.get(*pos) {
            Some('/') => {
                *pos = pos.saturating_add(1);
                let (n, s) = Self::term(c, pos, depth.saturating_add(1))?;
                let mut m = Self::default();
                m.merge(n, s);
                m
            }
            Some('(') => {
                *pos = pos.saturating_add(1);
                let m = Self::list(c, pos, depth.saturating_add(1))?;
                if c.get(*pos) != Some(&')') {
                    return Err(format!("expected `)` at {}", *pos));
                }
                *pos = pos.saturating_add(1);
                m
            }
            _ => Self::default(),
        };
        Ok((name, sub))
    }

    fn merge(&mut self, name: String, sub: Self) {
        match self.0.get_mut(&name) {
            // `a` and `a/b` together select all of `a`.
            Some(have) if have.0.is_empty() || sub.0.is_empty() => *have = Self::default(),
            Some(have) => {
                for (k, v) in sub.0 {
                    have.merge(k, v);
                }
            }
            None => {
                self.0.insert(name, sub);
            }
        }
    }

    /// What of `v` the mask selects.
    pub fn select(&self, v: &Value) -> Value {
        if self.0.is_empty() {
            return v.clone();
        }
        match v {
            Value::Object(o) => Value::Object(
                self.0
                    .iter()
                    .filter_map(|(k, sub)| o.get(k).map(|x| (k.clone(), sub.select(x))))
                    .collect::<Map<_, _>>(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.select(x)).collect()),
            other => other.clone(),
        }
    }
}

/// Parses one `exclude_fields` path (`a/b/c`).
pub fn parse_path(s: &str) -> Result<Vec<String>, String> {
    if s.is_empty() || s.len() > MAX_LEN {
        return Err("must be a path of field names like `order/customer`".into());
    }
    s.split('/')
        .map(|p| {
            if !p.is_empty() && p.chars().all(is_name) {
                Ok(p.to_owned())
            } else {
                Err(format!("`{s}` is not a path of field names like `order/customer`"))
            }
        })
        .collect()
}

/// Removes `path` from `v` (in every element of an array on the way).
pub fn exclude(v: &mut Value, path: &[String]) {
    let Some((first, rest)) = path.split_first() else { return };
    match v {
        Value::Object(o) if rest.is_empty() => {
            o.remove(first);
        }
        Value::Object(o) => {
            if let Some(x) = o.get_mut(first) {
                exclude(x, rest);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| exclude(x, path)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order() -> Value {
        json!({"order": {"id": "o-1", "currency": "NOK", "customer": {"email": "k@e.x", "id": "c"},
               "items": [{"line_id": 1, "amount": 5}, {"line_id": 2, "amount": 7}]}})
    }

    #[test]
    fn selections_nest_and_reach_into_arrays() {
        let m = Mask::parse("order(id,items(line_id)),order/customer/id").unwrap();
        assert_eq!(
            m.select(&order()),
            json!({"order": {"id": "o-1", "customer": {"id": "c"}, "items": [{"line_id": 1}, {"line_id": 2}]}})
        );
        assert_eq!(Mask::parse("order/currency").unwrap().select(&order()), json!({"order": {"currency": "NOK"}}));
        assert_eq!(Mask::parse("order,order/id").unwrap().select(&order()), order(), "all of it wins");
        assert_eq!(Mask::parse("draft").unwrap().select(&order()), json!({}));
    }

    #[test]
    fn malformed_masks_say_where() {
        for bad in ["", ",", "a(", "a(b", "a)", "a//b", "a b", "a(b))", "/a"] {
            assert!(Mask::parse(bad).is_err(), "{bad}");
        }
        assert!(parse_path("order//x").is_err());
        assert!(parse_path("order/customer").is_ok());
    }

    #[test]
    fn exclusions_remove_paths_everywhere() {
        let mut v = order();
        exclude(&mut v, &parse_path("order/customer").unwrap());
        exclude(&mut v, &parse_path("order/items/amount").unwrap());
        assert_eq!(v, json!({"order": {"id": "o-1", "currency": "NOK", "items": [{"line_id": 1}, {"line_id": 2}]}}));
    }
}
