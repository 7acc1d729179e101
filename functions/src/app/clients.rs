//! API clients (client credentials for the token endpoint): create, list, rotate a secret,
//! revoke, and check a presented secret. One implementation for both hosts: the operator
//! command runs it against the embedded store or the stack's table, the token endpoint checks
//! credentials with it.
//!
//! What is kept, in three item kinds written together in one atomic write:
//! - the credential, `CLIENT#{id}` / `CLIENT`: the account, the scopes and the secret's keyed
//!   hash (HMAC-SHA256), never the secret; revoking deletes it, so the token endpoint refuses
//!   the client from the next request on;
//! - the register, `AUTH#CLIENTS` / `{id}`: what `client list` shows (status included);
//! - the audit trail, `AUTH#AUDIT` / `{at, in ns}#{id}#{action}#{nonce}`: every change, when and
//!   by whom.
//!
//! The hashing key: `shopping-local` keys hashes with its data dir's signing secret, as
//! before; the stack keeps a random key in the table (`AUTH#KEYS` / `CLIENT_HASH`), made by
//! the first client's creation (see `domain/DECISIONS.md`, "API clients on the stack").

use domain::table::{Condition, Item, Key, WriteOp};
use hmac::{Hmac, KeyInit, Mac};
use infra::{query_all, Clock, Query, Store, StoreError};
use serde::{Deserialize, Serialize};

/// A client's credential as stored: never its secret, only the secret's keyed hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientRecord {
    pub client_id: String,
    pub account_id: String,
    pub scopes: String,
    /// Hex HMAC-SHA256 of the secret under the hashing key.
    pub secret_hash: String,
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

const REGISTER_PK: &str = "AUTH#CLIENTS";
const AUDIT_PK: &str = "AUTH#AUDIT";

fn credential_key(client_id: &str) -> Key {
    Key::new(format!("CLIENT#{client_id}"), "CLIENT")
}

fn hash_key_item() -> Key {
    Key::new("AUTH#KEYS", "CLIENT_HASH")
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

/// How client secrets are keyed before they are stored.
pub enum HashKey {
    /// A key the host holds (`shopping-local`: the data dir's signing secret).
    Fixed(Vec<u8>),
    /// The random key kept in the table, read once per process.
    Stored(std::sync::OnceLock<Vec<u8>>),
}

impl HashKey {
    pub fn stored() -> Self {
        Self::Stored(std::sync::OnceLock::new())
    }

    /// The key when it needs no read: the host's, or the table's once read.
    fn known(&self) -> Option<Vec<u8>> {
        match self {
            Self::Fixed(key) => Some(key.clone()),
            Self::Stored(cell) => cell.get().cloned(),
        }
    }

    /// Keeps the table's key once read.
    fn remember(&self, key: Vec<u8>) -> Vec<u8> {
        match self {
            Self::Fixed(fixed) => fixed.clone(),
            Self::Stored(cell) => cell.get_or_init(|| key).clone(),
        }
    }

    /// The key, made (random, kept in the table) by the first client's creation.
    async fn get_or_create(&self, store: &dyn Store) -> Result<Vec<u8>, StoreError> {
        if let Some(key) = self.known() {
            return Ok(key);
        }
        let key = match store.get(&hash_key_item()).await? {
            Some(item) => item.doc.into_bytes(),
            None => {
                let fresh = random_hex(32)?;
                let put = WriteOp::Put {
                    item: Item::new(hash_key_item(), 0, fresh.clone()),
                    cond: Some(Condition::NotExists),
                };
                match store.write(vec![put]).await {
                    Ok(()) => fresh.into_bytes(),
                    // Another operator made it first: use theirs.
                    Err(StoreError::ConditionFailed { .. }) => match store.get(&hash_key_item()).await? {
                        Some(item) => item.doc.into_bytes(),
                        None => return Err(StoreError::Unavailable("the hashing key vanished".into())),
                    },
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(self.remember(key))
    }
}

fn mac(key: &[u8]) -> Option<Hmac<sha2::Sha256>> {
    Hmac::<sha2::Sha256>::new_from_slice(key).ok()
}

fn hash(key: &[u8], secret: &str) -> String {
    let Some(mut m) = mac(key) else { return String::new() };
    m.update(secret.as_bytes());
    hex(&m.finalize().into_bytes())
}

/// The API clients of one store.
pub struct Clients<'a> {
    pub store: &'a dyn Store,
    pub clock: &'a dyn Clock,
    pub key: &'a HashKey,
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
            item: Item::new(Key::new(AUDIT_PK, sk), 0, to_doc(&entry)?),
            cond: Some(Condition::NotExists),
        })
    }

    fn register(&self, summary: &ClientSummary) -> Result<WriteOp, StoreError> {
        let item = Item::new(Key::new(REGISTER_PK, summary.client_id.clone()), 0, to_doc(summary)?);
        Ok(WriteOp::Put { item, cond: None })
    }

    /// Creates a client of `account` with `scopes`; answers its id and its secret (shown once).
    pub async fn create(&self, account: &str, scopes: &str, by: &str) -> Result<(String, String), ClientError> {
        let key = self.key.get_or_create(self.store).await?;
        let client_id = format!("cl_{}", random_hex(12)?);
        let secret = random_hex(32)?;
        let now = domain::ids::timestamp(self.clock.now());
        let rec = ClientRecord {
            client_id: client_id.clone(),
            account_id: account.to_owned(),
            scopes: scopes.to_owned(),
            secret_hash: hash(&key, &secret),
            created_at: now.clone(),
        };
        let summary = Self::summary(&rec, "active", None);
        let credential = Item::new(credential_key(&client_id), 0, to_doc(&rec)?);
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
        let items = query_all(self.store, Query::partition(REGISTER_PK)).await?;
        let mut all: Vec<ClientSummary> = items.iter().filter_map(|i| serde_json::from_str(&i.doc).ok()).collect();
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.client_id.cmp(&b.client_id)));
        Ok(all)
    }

    /// The audit trail, oldest first.
    pub async fn audit_trail(&self) -> Result<Vec<AuditEntry>, ClientError> {
        let items = query_all(self.store, Query::partition(AUDIT_PK)).await?;
        Ok(items.iter().filter_map(|i| serde_json::from_str(&i.doc).ok()).collect())
    }

    async fn load(&self, client_id: &str) -> Result<(Item, ClientRecord), ClientError> {
        let item = self.store.get(&credential_key(client_id)).await?;
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
        let key = self.key.get_or_create(self.store).await?;
        let secret = random_hex(32)?;
        rec.secret_hash = hash(&key, &secret);
        let now = domain::ids::timestamp(self.clock.now());
        let next = Item::new(credential_key(client_id), item.version + 1, to_doc(&rec)?);
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
                WriteOp::Delete { key: credential_key(client_id), cond: Some(Condition::VersionIs(item.version)) },
                self.register(&Self::summary(&rec, "revoked", Some(&now)))?,
                self.audit(&now, "revoke", client_id, &rec.account_id, by)?,
            ])
            .await
            .map_err(Self::conflict(client_id))?;
        Ok(())
    }

    /// The client `client_id` of account `aid` whose secret is `secret`; `None` for any
    /// mismatch (unknown, revoked, another account's, a wrong secret), checked in constant
    /// time whichever part is wrong.
    pub async fn verify(&self, aid: &str, client_id: &str, secret: &str) -> Result<Option<ClientRecord>, StoreError> {
        let credential = credential_key(client_id);
        // A process's first check reads the credential and the table's key in one request.
        let (item, key) = match self.key.known() {
            Some(key) => (self.store.get(&credential).await?, Some(key)),
            None => {
                let found = self.store.get_many(&[credential.clone(), hash_key_item()]).await?;
                let (mut item, mut key) = (None, None);
                for i in found {
                    if i.key() == credential {
                        item = Some(i);
                    } else if i.key() == hash_key_item() {
                        key = Some(self.key.remember(i.doc.into_bytes()));
                    }
                }
                (item, key)
            }
        };
        let rec: Option<ClientRecord> = item.and_then(|i| serde_json::from_str(&i.doc).ok());
        // The hash is checked even for an unknown client, so timing tells nothing either.
        let stored = rec.as_ref().map_or_else(|| "0".repeat(64), |r| r.secret_hash.clone());
        let expected: Vec<u8> = (0..stored.len() / 2)
            .filter_map(|i| stored.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect();
        let key = key.unwrap_or_else(|| vec![0; 32]);
        let matches = mac(&key).is_some_and(|mut m| {
            m.update(secret.as_bytes());
            m.verify_slice(&expected).is_ok()
        });
        Ok(rec.filter(|r| matches && r.account_id == aid))
    }
}
