//! The operator's commands for API clients (`shopping-local client …`) and tenants' request
//! limits (`shopping-local tenant …`), on either host's
//! store: the embedded store of a data dir, or a deployed stack's DynamoDB table (`--table`,
//! with the operator's AWS credentials from the environment, as the AWS CLI exports them).

use crate::app::clients::{ClientError, Clients, LegacyKey};
use infra::dynamo::DynamoStore;
use infra::{Store, SystemClock};
use std::path::PathBuf;
use std::sync::Arc;

/// Where the clients live.
pub enum Target {
    /// `shopping-local`'s data dir.
    DataDir(PathBuf),
    /// A stack's table.
    Table(String),
}

/// What to do.
pub enum Action {
    Create {
        account: String,
        scopes: String,
    },
    List,
    Rotate {
        client_id: String,
    },
    Revoke {
        client_id: String,
    },
    Audit,
    /// Removes the legacy hashing key once no client's secret needs it.
    Migrate,
    /// Sets an account's request limit (overriding the stack's default).
    TenantLimit {
        account: String,
        rate: u32,
        burst: u32,
    },
    /// Shows the accounts' overrides (one account's limit with `Some`).
    TenantShow {
        account: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(transparent)]
    Local(#[from] super::local::LocalError),
    #[error(
        "--table needs AWS credentials and a region in the environment ({0}); for example \
         eval \"$(aws configure export-credentials --format env)\" and AWS_REGION=…"
    )]
    Credentials(String),
    #[error(transparent)]
    Clients(#[from] ClientError),
    #[error("the store failed: {0}")]
    Store(#[from] infra::StoreError),
}

fn store(target: &Target, clock: Arc<SystemClock>) -> Result<(Arc<dyn Store>, LegacyKey), OperatorError> {
    match target {
        Target::DataDir(dir) => Ok(super::local::client_store(dir, clock)?),
        Target::Table(table) => {
            let store = DynamoStore::from_env(table.clone(), clock).map_err(OperatorError::Credentials)?;
            Ok((Arc::new(store), LegacyKey::stored()))
        }
    }
}

/// Runs `action` on `target` as `by`; answers the lines to print.
pub async fn run(target: &Target, action: Action, by: &str) -> Result<Vec<String>, OperatorError> {
    let clock = Arc::new(super::local::clock_from_env()?);
    let (store, key) = store(target, clock.clone())?;
    let clients = Clients { store: store.as_ref(), clock: clock.as_ref(), legacy: &key };
    Ok(match action {
        Action::Create { account, scopes } => {
            let (id, secret) = clients.create(&account, &scopes, by).await?;
            vec![format!("client_id={id}"), format!("client_secret={secret}")]
        }
        Action::Rotate { client_id } => {
            let secret = clients.rotate(&client_id, by).await?;
            vec![format!("client_id={client_id}"), format!("client_secret={secret}")]
        }
        Action::Revoke { client_id } => {
            clients.revoke(&client_id, by).await?;
            vec![format!("revoked client_id={client_id}")]
        }
        Action::List => {
            let mut lines = vec!["client_id\taccount_id\tstatus\tscopes\tcreated_at\tchanged_at".to_owned()];
            for c in clients.list().await? {
                let changed = c.changed_at.unwrap_or_else(|| "-".into());
                lines.push(format!(
                    "{}\t{}\t{}\t{}\t{}\t{changed}",
                    c.client_id, c.account_id, c.status, c.scopes, c.created_at
                ));
            }
            lines
        }
        Action::Migrate => {
            let left = clients.migrate().await?;
            let mut lines = vec![format!("legacy_clients={}", left.len())];
            if left.is_empty() {
                lines.push("legacy hashing key removed".into());
            } else {
                lines.push("legacy hashing key kept: these clients rehash on their next token (or rotate them)".into());
                lines.extend(left);
            }
            lines
        }
        Action::TenantLimit { account, rate, burst } => {
            let limit = domain::ratelimit::Limit::new(rate, burst);
            crate::edge::limit::write_policy(store.as_ref(), &account, limit).await?;
            vec![format!(
                "account_id={account} rate={} burst={} (taken by running instances within {} s)",
                limit.rate,
                limit.burst,
                crate::edge::limit::LEASE_MS * crate::edge::limit::PLENTIFUL_LEASES / 1000
            )]
        }
        Action::TenantShow { account } => {
            let mut lines = vec!["account_id\trate\tburst\tsource".to_owned()];
            let default = crate::edge::limit::Limiter::default_from_env();
            match account {
                Some(aid) => {
                    let (l, source) = match crate::edge::limit::read_policy(store.as_ref(), &aid).await? {
                        Some(l) => (l, "override"),
                        None => (default, "default (TENANT_RATE_LIMIT, TENANT_BURST_LIMIT)"),
                    };
                    lines.push(format!("{aid}\t{}\t{}\t{source}", l.rate, l.burst));
                }
                None => {
                    for (aid, l) in crate::edge::limit::list_policies(store.as_ref()).await? {
                        lines.push(format!("{aid}\t{}\t{}\toverride", l.rate, l.burst));
                    }
                    lines.push(format!(
                        "*\t{}\t{}\tdefault (TENANT_RATE_LIMIT, TENANT_BURST_LIMIT)",
                        default.rate, default.burst
                    ));
                }
            }
            lines
        }
        Action::Audit => {
            let mut lines = vec!["at\taction\tclient_id\taccount_id\tby".to_owned()];
            for e in clients.audit_trail().await? {
                lines.push(format!("{}\t{}\t{}\t{}\t{}", e.at, e.action, e.client_id, e.account_id, e.by));
            }
            lines
        }
    })
}
