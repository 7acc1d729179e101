//! The application layer: the use cases over the store port that every resource group and
//! worker shares — loading an aggregate from its partition, the one optimistic write loop,
//! idempotent replay, list pages, the subscription repository. It speaks no HTTP: it answers
//! typed results and [`AppError`], which the edge maps to responses.

pub mod aggregate;
pub mod answer;
pub mod clients;
pub mod error;
pub mod idempotency;
pub mod listing;
pub mod partition;
pub mod retry;
pub mod shown;
pub mod subscriptions;
pub mod write;

pub use error::AppError;

/// Ids from the operating system's random source.
pub struct RandomIds;

impl domain::ids::Ids for RandomIds {
    fn uuid(&mut self) -> String {
        uuid::Uuid::new_v4().to_string()
    }

    fn alphanumeric9(&mut self) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut out = String::with_capacity(9);
        while out.len() < 9 {
            let mut buf = [0u8; 16];
            if getrandom::fill(&mut buf).is_err() {
                // Fall back to a v4 UUID's random bytes; both come from the OS.
                buf = *uuid::Uuid::new_v4().as_bytes();
            }
            // Rejection sampling keeps every character equally likely.
            for b in buf {
                if out.len() < 9 && b < 252 {
                    if let Some(c) = ALPHABET.get(usize::from(b % 36)) {
                        out.push(char::from(*c));
                    }
                }
            }
        }
        out
    }
}
