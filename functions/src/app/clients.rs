//! API clients (client credentials for the token endpoint): create, list, rotate a secret,
//! revoke, and check a presented secret. One implementation for both hosts: the operator
//! command runs it against the embedded store or the stack's table, the token endpoint checks
//! credentials with it.
//!
//! What is kept, in three item kinds written together in one atomic write (keys:
//! `domain::table`):
//! - the credential, `CLIENT#{id}` / `CLIENT`: the account, the scopes and the secret's
//!   SHA-256, never the secret; revoking deletes it, so the token endpoint refuses the client
//!   from the next request on;
//! - the register, `AUTH#CLIENTS` / `{id}`: what `client list` shows (status included);
//! - the audit trail, `AUTH#AUDIT` / `{at, in ns}#{id}#{action}#{nonce}`: every change, when and
//!   by whom.
//!
//! The secret's hash is unkeyed: a secret is 256 random bits, so no key makes guessing it any
//! harder, and a key kept beside the hashes only travels where they travel (the table's
//! stream, backups, exports). Clients made before this were hashed with a key
//! (HMAC-SHA256: on the stack the table's `AUTH#KEYS` item, locally the data dir's secret);
//! such a client still authenticates, and its first success rehashes it (see
//! `domain/DECISIONS.md`, "API client secrets").

use domain::table::{client_key, legacy_hash_key, Condition, Item, Key, WriteOp, CLIENT_AUDIT_PK, CLIENT_REGISTER_PK};
use hmac::{Hmac, KeyInit, Mac};
use infra::{query_all, Clock, Query, Store, StoreError};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

/// A client's credential as stored: never its secret, only the secret's hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientRecord {
    pub client_id: String,
    pub account_id: String,
    pub scopes: String,
    /// Hex SHA-256 of the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_sha256: Option<String>,
    /// A client made before the unkeyed hash: hex HMAC-SHA256 of the secret under the legacy
    /// hashing key, until its first token rehashes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    pub created_at: String,
}

/// A client as `client list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientSummary {
    pub client_id: String,
    pub account_id: String,
    pub scopes: String,
    /// `active` or `revoked`.
    pub status: String,
    pub created_at: String,
    /// When the secret was last rotated, or the client revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<String>,
}

/// One change to a client, as the audit trail keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEntry {
    pub at: String,
    /// `create`, `rotate` or `revoke`.
    pub action: String,
    pub client_id: String,
    pub account_id: String,
    /// Who made the change (the operator command's `--by`, by default the login name).
    pub by: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no client {0}")]
    NotFound(String),
    #[error("client {0} changed meanwhile; run the command again")]
    Conflict(String),
    #[error("{0}")]
    Store(#[from] StoreError),
}

fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).map_err(|e| StoreError::Unavailable(e.to_string().into()))?;
    Ok(hex(&b))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn to_doc<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.into()))
}

/// The key of legacy (keyed) hashes: read only when such a client is met.
pub enum LegacyKey {
    /// A key the host holds (`shopping-local`: the data dir's signing secret).
    Fixed(Vec<u8>),
    /// The table's `AUTH#KEYS` item, if it still exists; read once per process.
    Stored(tokio::sync::OnceCell<Option<Vec<u8>>>),
}

impl LegacyKey {
    pub fn stored() -> Self {
        Self::Stored(tokio::sync::OnceCell::new())
    }

    async fn get(&self, store: &dyn Store) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Self::Fixed(key) => Ok(Some(key.clone())),
            Self::Stored(cell) => cell
                .get_or_try_init(|| async { Ok(store.get(&legacy_hash_key()).await?.map(|i| i.doc.into_bytes())) })
                .await
                .cloned(),
        }
    }
}

fn sha256_hex(secret: &str) -> String {
    hex(&sha2::Sha256::digest(secret.as_bytes()))
}

fn from_hex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .filter_map(|i| text.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

/// Whether `secret` is the one `stored` (hex SHA-256) was made of, in constant time.
fn sha256_matches(stored: &str, secret: &str) -> bool {
    bool::from(sha2::Sha256::digest(secret.as_bytes()).as_slice().ct_eq(&from_hex(stored)))
}

/// Whether `secret` is the one a legacy `stored` hash (hex HMAC-SHA256 under `key`) was made of.
fn legacy_matches(key: &[u8], stored: &str, secret: &str) -> bool {
    Hmac::<sha2::Sha256>::new_from_slice(key).is_ok_and(|mut m| {
        m.update(secret.as_bytes());
        m.verify_slice(&from_hex(stored)).is_ok()
    })
}

/// The API clients of one store.
pub struct Clients<'a> {
    pub store: &'a dyn Store,
    pub clock: &'a dyn Clock,
    pub legacy: &'a LegacyKey,
}

impl Clients<'_> {
    fn audit(
        &self,
        at: &str,
        action: &str,
        client_id: &str,
        account_id: &str,
        by: &str,
    ) -> Result<WriteOp, StoreError> {
        let entry = AuditEntry {
            at: at.to_owned(),
            action: action.to_owned(),
            client_id: client_id.to_owned(),
            account_id: account_id.to_owned(),
            by: by.to_owned(),
        };
        // Nanoseconds in the key, so the trail sorts in the order the changes were made even
        // within one millisecond of the shown time.
        let precise = self.clock.now().format("%Y-%m-%dT%H:%M:%S%.9fZ");
        let sk = format!("{precise}#{client_id}#{action}#{}", random_hex(4)?);
        Ok(WriteOp::Put {
            item: Item::new(Key::new(CLIENT_AUDIT_PK, sk), 0, to_doc(&entry)?),
            cond: Some(Condition::NotExists),
        })
    }

    fn register(&self, summary: &ClientSummary) -> Result<WriteOp, StoreError> {
        let item = Item::new(Key::new(CLIENT_REGISTER_PK, summary.client_id.clone()), 0, to_doc(summary)?);
        Ok(WriteOp::Put { item, cond: None })
    }

    /// Creates a client of `account` with `scopes`; answers its id and its secret (shown once).
    pub async fn create(&self, account: &str, scopes: &str, by: &str) -> Result<(String, String), ClientError> {
        let client_id = format!("cl_{}", random_hex(12)?);
        let secret = random_hex(32)?;
        let now = domain::ids::timestamp(self.clock.now());
        let rec = ClientRecord {
            client_id: client_id.clone(),
            account_id: account.to_owned(),
            scopes: scopes.to_owned(),
            secret_sha256: Some(sha256_hex(&secret)),
            secret_hash: None,
            created_at: now.clone(),
        };
        let summary = Self::summary(&rec, "active", None);
        let credential = Item::new(client_key(&client_id), 0, to_doc(&rec)?);
        self.store
            .write(vec![
                WriteOp::Put { item: credential, cond: Some(Condition::NotExists) },
                self.register(&summary)?,
                self.audit(&now, "create", &client_id, account, by)?,
            ])
            .await?;
        Ok((client_id, secret))
    }

    /// Every client in the register (revoked ones included), oldest first.
    pub async fn list(&self) -> Result<Vec<ClientSummary>, ClientError> {
        let items = query_all(self.store, Query::partition(CLIENT_REGISTER_PK)).await?;
        let mut all: Vec<ClientSummary> = items.iter().filter_map(|i| serde_json::from_str(&i.doc).ok()).collect();
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.client_id.cmp(&b.client_id)));
        Ok(all)
    }

    /// The audit trail, oldest first.
    pub async fn audit_trail(&self) -> Result<Vec<AuditEntry>, ClientError> {
        let items = query_all(self.store, Query::partition(CLIENT_AUDIT_PK)).await?;
        Ok(items.iter().filter_map(|i| serde_json::from_str(&i.doc).ok()).collect())
    }

    async fn load(&self, client_id: &str) -> Result<(Item, ClientRecord), ClientError> {
        let item = self.store.get(&client_key(client_id)).await?;
        let item = item.ok_or_else(|| ClientError::NotFound(client_id.to_owned()))?;
        let rec: ClientRecord = serde_json::from_str(&item.doc).map_err(|e| StoreError::Corrupt(e.into()))?;
        Ok((item, rec))
    }

    fn summary(rec: &ClientRecord, status: &str, changed_at: Option<&str>) -> ClientSummary {
        ClientSummary {
            client_id: rec.client_id.clone(),
            account_id: rec.account_id.clone(),
            scopes: rec.scopes.clone(),
            status: status.to_owned(),
            created_at: rec.created_at.clone(),
            changed_at: changed_at.map(str::to_owned),
        }
    }

    fn conflict(client_id: &str) -> impl Fn(StoreError) -> ClientError + '_ {
        move |e| match e {
            StoreError::ConditionFailed { .. } => ClientError::Conflict(client_id.to_owned()),
            e => ClientError::Store(e),
        }
    }

    /// Gives the client a new secret (answered once); the old one stops working at once.
    pub async fn rotate(&self, client_id: &str, by: &str) -> Result<String, ClientError> {
        let (item, mut rec) = self.load(client_id).await?;
        let secret = random_hex(32)?;
        rec.secret_sha256 = Some(sha256_hex(&secret));
        rec.secret_hash = None;
        let now = domain::ids::timestamp(self.clock.now());
        let next = Item::new(client_key(client_id), item.version + 1, to_doc(&rec)?);
        self.store
            .write(vec![
                WriteOp::Put { item: next, cond: Some(Condition::VersionIs(item.version)) },
                self.register(&Self::summary(&rec, "active", Some(&now)))?,
                self.audit(&now, "rotate", client_id, &rec.account_id, by)?,
            ])
            .await
            .map_err(Self::conflict(client_id))?;
        Ok(secret)
    }

    /// Revokes the client: the token endpoint refuses it from the next request on.
    pub async fn revoke(&self, client_id: &str, by: &str) -> Result<(), ClientError> {
        let (item, rec) = self.load(client_id).await?;
        let now = domain::ids::timestamp(self.clock.now());
        self.store
            .write(vec![
                WriteOp::Delete { key: client_key(client_id), cond: Some(Condition::VersionIs(item.version)) },
                self.register(&Self::summary(&rec, "revoked", Some(&now)))?,
                self.audit(&now, "revoke", client_id, &rec.account_id, by)?,
            ])
            .await
            .map_err(Self::conflict(client_id))?;
        Ok(())
    }

    /// The client `client_id` of account `aid` whose secret is `secret`; `None` for any
    /// mismatch (unknown, revoked, another account's, a wrong secret). A hash is checked even
    /// for an unknown client, so timing tells little either.
    pub async fn verify(&self, aid: &str, client_id: &str, secret: &str) -> Result<Option<ClientRecord>, StoreError> {
        let item = self.store.get(&client_key(client_id)).await?;
        let found = item.and_then(|i| serde_json::from_str::<ClientRecord>(&i.doc).ok().map(|r| (i.version, r)));
        let Some((version, mut rec)) = found else {
            sha256_matches(&"0".repeat(64), secret);
            return Ok(None);
        };
        let matches = match (&rec.secret_sha256, &rec.secret_hash) {
            (Some(stored), _) => sha256_matches(stored, secret),
            (None, Some(legacy)) => {
                let key = self.legacy.get(self.store).await?;
                let matches = key.is_some_and(|key| legacy_matches(&key, legacy, secret));
                if matches {
                    self.rehash(version, &mut rec, secret).await;
                }
                matches
            }
            (None, None) => false,
        };
        Ok((matches && rec.account_id == aid).then_some(rec))
    }

    /// Moves a legacy client to the unkeyed hash, now that its secret is known to be right.
    /// Best effort: if it fails (a concurrent rotation, say), the next success tries again.
    async fn rehash(&self, version: u64, rec: &mut ClientRecord, secret: &str) {
        rec.secret_sha256 = Some(sha256_hex(secret));
        rec.secret_hash = None;
        let write = async {
            let next = Item::new(client_key(&rec.client_id), version + 1, to_doc(rec)?);
            self.store.write(vec![WriteOp::Put { item: next, cond: Some(Condition::VersionIs(version)) }]).await
        };
        if let Err(error) = write.await {
            tracing::warn!(client_id = %rec.client_id, %error, "a legacy client's secret was not rehashed; the next token tries again");
        }
    }

    /// Clients whose secrets still have the legacy keyed hash (they rehash on their next token).
    pub async fn legacy(&self) -> Result<Vec<String>, ClientError> {
        let active: Vec<String> =
            self.list().await?.into_iter().filter(|c| c.status == "active").map(|c| c.client_id).collect();
        // One batch read of every active credential, not one read each.
        let keys: Vec<Key> = active.iter().map(|id| client_key(id)).collect();
        let legacy: std::collections::HashSet<String> = (self.store.get_many(&keys).await?.iter())
            .filter_map(|i| serde_json::from_str::<ClientRecord>(&i.doc).ok())
            .filter(|rec| rec.secret_sha256.is_none())
            .map(|rec| rec.client_id)
            .collect();
        Ok(active.into_iter().filter(|id| legacy.contains(id)).collect())
    }

    /// Removes the legacy hashing key once no client needs it; answers the clients that still
    /// do (and then keeps it).
    pub async fn migrate(&self) -> Result<Vec<String>, ClientError> {
        let left = self.legacy().await?;
        if left.is_empty() {
            self.store.write(vec![WriteOp::Delete { key: legacy_hash_key(), cond: None }]).await?;
        }
        Ok(left)
    }
}
