//! Order events: which ones a read includes, and the combined `state` they add up to.

use crate::error::{DomainError, FieldError};
use crate::model::Event;
use std::collections::HashMap;

pub const API_EVENT: &str = "api-event";
pub const SERVICE_EVENT: &str = "service-event";

/// Parses `include_events` (repeatable, comma lists): `None` means no events. `api-event` is
/// refused where the API does not offer it (customer and store views).
pub fn include_events(pairs: &[(String, String)], allow_api: bool) -> Result<Option<Vec<&'static str>>, DomainError> {
    let mut kinds: Vec<&'static str> = Vec::new();
    for (_, v) in pairs.iter().filter(|(k, _)| k == "include_events" || k == "include_events[]") {
        for v in v.split(',').map(str::trim) {
            let add: &[&'static str] = match v {
                "false" | "" => &[],
                "true" if allow_api => &[API_EVENT, SERVICE_EVENT],
                "true" => &[SERVICE_EVENT],
                "api-event" if allow_api => &[API_EVENT],
                "service-event" => &[SERVICE_EVENT],
                other => {
                    return Err(DomainError::Validation(vec![FieldError::new(
                        "include_events",
                        "INVALID",
                        format!("`{other}` is not allowed here"),
                    )]))
                }
            };
            for a in add {
                if !kinds.contains(a) {
                    kinds.push(a);
                }
            }
        }
    }
    Ok((!kinds.is_empty()).then_some(kinds))
}

/// `failure` if any service event reports error or failure; `pending` if there is none or the
/// latest event of any service is pending; else `success`.
pub fn combined_state(events: &[Event]) -> &'static str {
    let service: Vec<&Event> = events.iter().filter(|e| e.event_type.as_deref() == Some(SERVICE_EVENT)).collect();
    if service.iter().any(|e| matches!(e.state.as_deref(), Some("error" | "failure"))) {
        return "failure";
    }
    // Events are in the order they were added, so the last one per service is its latest.
    let mut latest: HashMap<&str, &str> = HashMap::new();
    for e in &service {
        latest.insert(e.service.as_deref().unwrap_or(""), e.state.as_deref().unwrap_or("success"));
    }
    if latest.is_empty() || latest.values().any(|s| *s == "pending") {
        "pending"
    } else {
        "success"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(service: &str, state: &str) -> Event {
        Event {
            event_type: Some(SERVICE_EVENT.into()),
            service: Some(service.into()),
            state: Some(state.into()),
            ..Default::default()
        }
    }

    #[test]
    fn combined_state_rules() {
        assert_eq!(combined_state(&[]), "pending");
        assert_eq!(combined_state(&[ev("kitchen", "pending"), ev("kitchen", "success")]), "success");
        assert_eq!(combined_state(&[ev("kitchen", "success"), ev("courier", "pending")]), "pending");
        assert_eq!(combined_state(&[ev("kitchen", "error"), ev("kitchen", "success")]), "failure");
    }

    #[test]
    fn include_events_values() {
        let q = |v: &str| vec![("include_events".to_owned(), v.to_owned())];
        assert_eq!(include_events(&q("false"), true).unwrap(), None);
        assert_eq!(include_events(&q("true"), true).unwrap(), Some(vec![API_EVENT, SERVICE_EVENT]));
        assert_eq!(include_events(&q("true"), false).unwrap(), Some(vec![SERVICE_EVENT]));
        assert!(include_events(&q("api-event"), false).is_err());
        assert!(include_events(&q("bogus"), true).is_err());
    }
}
