//! The JSON Schema keywords the event schemas use (`events/schemas`, Draft 2020-12, and the
//! registry's Draft 4 conversion of them), checked by hand: a schema crate would bring its own
//! dependencies' features into every Lambda's build (Cargo unifies a package's features
//! across its binaries), and these schemas need a few dozen lines. A keyword outside this set
//! is reported, not ignored, so a schema that grows one cannot pass unchecked. `format`
//! is asserted (`date-time`, `uuid`), as a consumer generating code from the schema would.

use serde_json::Value;

/// Keywords that assert nothing.
const ANNOTATIONS: [&str; 10] = [
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "examples",
    "default",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// Where `instance` breaks `schema`: one entry per failed assertion, with its JSON pointer.
pub fn errors(schema: &Value, instance: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(schema, instance, "", &mut out);
    out
}

fn at(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

fn is_type(name: &str, v: &Value) -> bool {
    match name {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        // An integer is written without a fraction (an integer is never `2.0` on our wire).
        "integer" => v.is_i64() || v.is_u64(),
        _ => false,
    }
}

fn format_holds(format: &str, text: &str) -> Option<bool> {
    match format {
        "date-time" => Some(chrono::DateTime::parse_from_rfc3339(text).is_ok()),
        "uuid" => Some(uuid::Uuid::try_parse(text).is_ok()),
        _ => None,
    }
}

fn check(schema: &Value, v: &Value, path: &str, out: &mut Vec<String>) {
    let Some(map) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            out.push(format!("{} is not allowed", at(path)));
        }
        return;
    };
    for (key, arg) in map {
        if ANNOTATIONS.contains(&key.as_str()) || key.starts_with("x-") {
            continue;
        }
        let mut fail = |why: String| out.push(format!("{why} at {}", at(path)));
        match key.as_str() {
            "type" => {
                let names: Vec<&str> = match arg {
                    Value::String(one) => vec![one.as_str()],
                    Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                    _ => Vec::new(),
                };
                if !names.iter().any(|n| is_type(n, v)) {
                    fail(format!("{} is not of type {}", short(v), names.join(" or ")));
                }
            }
            "const" if v != arg => fail(format!("{} is not {arg}", short(v))),
            "enum" if !arg.as_array().is_some_and(|a| a.contains(v)) => fail(format!("{} is none of {arg}", short(v))),
            "const" | "enum" => {}
            "required" => {
                if let (Some(names), Some(obj)) = (arg.as_array(), v.as_object()) {
                    for name in names.iter().filter_map(Value::as_str).filter(|n| !obj.contains_key(*n)) {
                        fail(format!("\"{name}\" is required"));
                    }
                }
            }
            "properties" => {
                if let (Some(props), Some(obj)) = (arg.as_object(), v.as_object()) {
                    for (name, sub) in props {
                        if let Some(value) = obj.get(name) {
                            check(sub, value, &format!("{path}/{name}"), out);
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(obj) = v.as_object() {
                    let known = map.get("properties").and_then(Value::as_object);
                    for (name, value) in obj.iter().filter(|(n, _)| !known.is_some_and(|k| k.contains_key(*n))) {
                        match arg {
                            Value::Bool(false) => out.push(format!("\"{name}\" is not allowed at {}", at(path))),
                            sub => check(sub, value, &format!("{path}/{name}"), out),
                        }
                    }
                }
            }
            "items" => {
                if let Some(items) = v.as_array() {
                    for (i, item) in items.iter().enumerate() {
                        check(arg, item, &format!("{path}/{i}"), out);
                    }
                }
            }
            "minItems" | "maxItems" | "minLength" | "maxLength" => {
                let len = match (key.as_str(), v) {
                    ("minItems" | "maxItems", Value::Array(a)) => a.len(),
                    ("minLength" | "maxLength", Value::String(s)) => s.chars().count(),
                    _ => continue,
                };
                let bound = arg.as_u64().unwrap_or(0) as usize;
                if (key.starts_with("min") && len < bound) || (key.starts_with("max") && len > bound) {
                    fail(format!("{} breaks {key} {bound}", short(v)));
                }
            }
            "minimum" | "maximum" => {
                if let (Some(n), Some(bound)) = (v.as_f64(), arg.as_f64()) {
                    if (key == "minimum" && n < bound) || (key == "maximum" && n > bound) {
                        fail(format!("{} breaks {key} {arg}", short(v)));
                    }
                }
            }
            "pattern" => {
                if let (Some(text), Some(pattern)) = (v.as_str(), arg.as_str()) {
                    match regex_lite::Regex::new(pattern) {
                        Ok(re) if re.is_match(text) => {}
                        Ok(_) => fail(format!("{} does not match {pattern}", short(v))),
                        Err(e) => fail(format!("the schema's pattern {pattern} is not a regular expression: {e}")),
                    }
                }
            }
            "format" => {
                if let (Some(text), Some(format)) = (v.as_str(), arg.as_str()) {
                    match format_holds(format, text) {
                        Some(true) => {}
                        Some(false) => fail(format!("{} is not a {format}", short(v))),
                        None => fail(format!("the schema's format {format} is one smoke does not check")),
                    }
                }
            }
            "not" => {
                if errors(arg, v).is_empty() {
                    fail(format!("{} matches a schema it must not ({arg})", short(v)));
                }
            }
            "anyOf" | "oneOf" | "allOf" => {
                let subs = arg.as_array().map(Vec::as_slice).unwrap_or_default();
                let held = subs.iter().filter(|s| errors(s, v).is_empty()).count();
                let holds = match key.as_str() {
                    "anyOf" => held > 0,
                    "oneOf" => held == 1,
                    _ => held == subs.len(),
                };
                if !holds {
                    fail(format!("{} matches {held} of the {} schemas of its {key}", short(v), subs.len()));
                }
            }
            "if" => {
                let branch = if errors(arg, v).is_empty() { map.get("then") } else { map.get("else") };
                if let Some(branch) = branch {
                    check(branch, v, path, out);
                }
            }
            // Taken with their `if`.
            "then" | "else" => {}
            other => fail(format!("the schema's keyword {other} is one smoke does not check")),
        }
    }
}

/// A value, cut short for a report line.
fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 60 {
        text.chars().take(57).collect::<String>() + "…"
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_keyword_holds_and_fails_where_it_should() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "required": ["id", "n"], "additionalProperties": false,
            "properties": {
                "id": {"type": "string", "pattern": "^[PT][0-9]{8}$"},
                "n": {"type": "integer", "minimum": 0},
                "at": {"type": "string", "format": "date-time"},
                "kind": {"const": "a"},
                "s": {"enum": ["open", "closed"]},
                "list": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
                "o": {"type": "object", "not": {"required": ["events"]},
                      "if": {"required": ["deleted_at"]}, "then": {"required": ["id"]}},
                "either": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            },
        });
        let good = json!({"id": "T00000000", "n": 2, "at": "2026-12-07T08:00:00Z", "kind": "a", "s": "open",
                          "list": ["x"], "o": {"deleted_at": "x", "id": "y"}, "either": null});
        assert_eq!(errors(&schema, &good), Vec::<String>::new());
        let bad = json!({"id": "X1", "n": 2.0, "at": "yesterday", "kind": "b", "s": "gone", "list": [""],
                         "o": {"events": [], "deleted_at": "x"}, "either": 1, "extra": true});
        let found = errors(&schema, &bad);
        for expected in [
            "\"X1\" does not match ^[PT][0-9]{8}$ at /id",
            "2.0 is not of type integer at /n",
            "\"yesterday\" is not a date-time at /at",
            "\"b\" is not \"a\" at /kind",
            "\"gone\" is none of [\"open\",\"closed\"] at /s",
            "\"\" breaks minLength 1 at /list/0",
            "\"id\" is required at /o",
            "1 matches 0 of the 2 schemas of its anyOf at /either",
            "\"extra\" is not allowed at /",
        ] {
            assert!(found.iter().any(|f| f == expected), "{expected} not in {found:#?}");
        }
        assert!(found.iter().any(|f| f.contains("must not") && f.ends_with("at /o")), "{found:#?}");
        let unknown = errors(&json!({"patternProperties": {}}), &json!({}));
        assert_eq!(unknown, vec!["the schema's keyword patternProperties is one smoke does not check at /"]);
    }
}
