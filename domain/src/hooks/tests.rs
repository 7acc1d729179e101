//! The subscription and delivery rules.

#[test]
fn back_off_grows_on_both_engines() {
    assert_eq!((1..=4).map(local_backoff_ms).collect::<Vec<_>>(), [1000, 2000, 4000, 8000]);
    let aws: Vec<i32> = (1..AWS_MAX_ATTEMPTS).map(aws_backoff_seconds).collect();
    assert_eq!(aws, AWS_BACKOFF_SECONDS);
    assert!(aws.iter().map(|s| i64::from(*s)).sum::<i64>() >= 24 * 60 * 60, "a day at least");
    assert!(aws.iter().all(|s| *s <= 12 * 60 * 60), "within SQS's visibility limit");
    assert_eq!(aws_backoff_seconds(40), 36_000);
}

use super::*;

fn ok(_: &str) -> std::result::Result<(), String> {
    Ok(())
}

#[test]
fn bodies_are_checked() {
    let b = SubscriptionBody { events: Some(vec!["nope".into()]), ..Default::default() };
    let Err(DomainError::Validation(errs)) = check_body(&b, true, &ok) else { panic!() };
    let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["events[0]", "config.url"]);
    let bad_url = |_: &str| Err("must not point at a private address".to_owned());
    let b = SubscriptionBody {
        events: Some(vec![webhook::ORDER_UPDATE.into()]),
        config: Some(ConfigBody { url: Some("http://10.0.0.1/".into()), ..Default::default() }),
        ..Default::default()
    };
    assert!(check_body(&b, true, &bad_url).is_err());
    assert!(check_body(&b, true, &ok).is_ok());
}

#[test]
fn backoff_grows() {
    assert_eq!([1, 2, 3, 4].map(local_backoff_ms), [1000, 2000, 4000, 8000]);
}
