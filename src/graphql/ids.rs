//! Global ids (`node(id:)`) and pagination cursors: sealed, so they carry nothing a client
//! can read, and authenticated, so a client cannot make one.
//!
//! Each is URL-safe base64 (no padding, canonical) of AES-256-GCM-SIV over what it
//! stands for, with a fixed nonce: the same object always gets the same id (GCM-SIV then
//! shows equality and nothing else), ids stay stable across requests and replicas that
//! share the key, and anything altered, padded, truncated or sealed under another key is
//! `INVALID_ID` or `INVALID_CURSOR`, as a malformed one is. Ids and cursors are sealed
//! for different purposes (the associated data), so a cursor is never an id. The key is
//! derived (HKDF-SHA256) from `ids.key_file`; `ids.previous_key_files` are still read, for
//! rotation (README, "Ids and cursors").

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};

use crate::audit::store::Position;
use crate::config::{Config, Environment};
use crate::error::ApiError;

/// The kinds of object `node(id:)` can return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::Display, strum::EnumString)]
pub enum Kind {
    Customer,
    Order,
    Ticket,
    Campaign,
    ServiceAlert,
}

impl Kind {
    const ALL: [Kind; 5] = [Kind::Customer, Kind::Order, Kind::Ticket, Kind::Campaign, Kind::ServiceAlert];

    fn tag(self) -> u8 {
        self as u8
    }
}

/// How a key is written inside an id (the second half of its first byte).
const KEY_UUID: u8 = 0x10;
const KEY_INTEGER: u8 = 0x20;
const KEY_TEXT: u8 = 0x30;

/// The associated data of each purpose.
const FOR_ID: &[u8] = b"c360 id";
const FOR_CURSOR: &[u8] = b"c360 cursor";

/// The keys ids and cursors are sealed with: the current one first, then earlier ones
/// (read only).
pub struct Ids {
    keys: Vec<Aes256GcmSiv>,
}

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdsKeyError {
    #[error("ids.key_file is required in production (a file of at least 32 random bytes)")]
    Missing,
    #[error("ids key file {0}: {1}")]
    Unreadable(String, String),
    #[error("ids key file {0} holds fewer than 32 bytes")]
    Short(String),
}

/// A cursor before it is sealed: where a list stopped, as the list reads it back. Sealed
/// only when a client selects it ([`Ids::seal_cursor`]): a page of 50 customers with
/// their orders and tickets has 550 cursors, and sealing them all was a tenth of its CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor(String);

impl Ids {
    /// The keys of `config` (in development without `ids.key_file`, `data_dir/ids.key`,
    /// made on first use).
    pub fn load(config: &Config) -> Result<Ids, IdsKeyError> {
        let current = match &config.ids.key_file {
            Some(path) => read(path)?,
            None if config.environment == Environment::Production => return Err(IdsKeyError::Missing),
            None => {
                let path = config.data_dir.join("ids.key");
                crate::auth::keys::local_secret(&path, "ids key (at least 32 characters)")
                    .map_err(|e| IdsKeyError::Unreadable(path.display().to_string(), e.to_string()))?
            }
        };
        let mut secrets = vec![current];
        for path in &config.ids.previous_key_files {
            secrets.push(read(path)?);
        }
        Ok(Ids::from_secrets(&secrets))
    }

    /// Keys derived from `secrets`, the first one current.
    pub fn from_secrets(secrets: &[Vec<u8>]) -> Ids {
        let keys = secrets
            .iter()
            .map(|secret| {
                let mut key = [0u8; 32];
                // 32 bytes are well within what HKDF-SHA256 can expand to.
                let _ = hkdf::Hkdf::<sha2::Sha256>::new(None, secret).expand(b"c360 ids and cursors v1", &mut key);
                Aes256GcmSiv::new(&key.into())
            })
            .collect();
        Ids { keys }
    }

    fn seal(&self, purpose: &[u8], plain: &[u8]) -> String {
        // Sealing cannot fail for inputs this small; an empty string would be refused.
        let sealed = self.keys[0].encrypt(&Nonce::default(), Payload { msg: plain, aad: purpose }).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(sealed)
    }

    /// What `text` was sealed from for `purpose`, under any of the keys; `None` for
    /// anything else (also padding and non-canonical base64).
    fn open(&self, purpose: &[u8], text: &str) -> Option<Vec<u8>> {
        if text.len() > 512 {
            return None;
        }
        let sealed = URL_SAFE_NO_PAD.decode(text).ok()?;
        self.keys.iter().find_map(|k| k.decrypt(&Nonce::default(), Payload { msg: &sealed, aad: purpose }).ok())
    }

    /// The global id of the object of `kind` with `key`.
    pub fn global_id(&self, kind: Kind, key: &str) -> async_graphql::ID {
        let mut plain = Vec::with_capacity(24);
        // Only the canonical text of a uuid is written as one (so the key reads back as is).
        let uuid = uuid::Uuid::parse_str(key).ok().filter(|u| u.as_hyphenated().to_string() == key);
        if let Some(uuid) = uuid {
            plain.push(kind.tag() | KEY_UUID);
            plain.extend_from_slice(uuid.as_bytes());
        } else if let Some(n) = key.parse::<i64>().ok().filter(|n| n.to_string() == key) {
            plain.push(kind.tag() | KEY_INTEGER);
            plain.extend_from_slice(&n.to_be_bytes());
        } else {
            plain.push(kind.tag() | KEY_TEXT);
            plain.extend_from_slice(key.as_bytes());
        }
        async_graphql::ID(self.seal(FOR_ID, &plain))
    }

    /// The kind and key of a global id; anything else is `INVALID_ID`.
    pub(crate) fn parse_global_id(&self, id: &str) -> Result<(Kind, String), ApiError> {
        let invalid = || ApiError::InvalidId(truncate(id));
        let plain = self.open(FOR_ID, id).ok_or_else(invalid)?;
        let (&first, rest) = plain.split_first().ok_or_else(invalid)?;
        let kind = Kind::ALL.into_iter().find(|k| k.tag() == first & 0x0f).ok_or_else(invalid)?;
        let key = match first & 0xf0 {
            KEY_UUID => uuid::Uuid::from_slice(rest).map_err(|_| invalid())?.to_string(),
            KEY_INTEGER => i64::from_be_bytes(rest.try_into().map_err(|_| invalid())?).to_string(),
            KEY_TEXT => String::from_utf8(rest.to_vec()).map_err(|_| invalid())?,
            _ => return Err(invalid()),
        };
        Ok((kind, key))
    }

    /// The key of a global id that must be of `kind`.
    pub fn parse_id_of(&self, kind: Kind, id: &str) -> Result<String, ApiError> {
        match self.parse_global_id(id)? {
            (k, key) if k == kind => Ok(key),
            _ => Err(ApiError::InvalidId(truncate(id))),
        }
    }

    /// `cursor` sealed: what clients see.
    pub(crate) fn seal_cursor(&self, cursor: &Cursor) -> String {
        self.seal(FOR_CURSOR, cursor.0.as_bytes())
    }

    fn open_cursor(&self, cursor: &str) -> Result<String, ApiError> {
        let plain = self.open(FOR_CURSOR, cursor).ok_or(ApiError::InvalidCursor)?;
        String::from_utf8(plain).map_err(|_| ApiError::InvalidCursor)
    }

    /// Cursor of a customer list: the golden id of the last customer seen.
    pub(crate) fn customer_cursor(id: &str) -> Cursor {
        Cursor(format!("cu:{id}"))
    }

    pub(crate) fn parse_customer_cursor(&self, cursor: &str) -> Result<String, ApiError> {
        let text = self.open_cursor(cursor)?;
        let id = text.strip_prefix("cu:").ok_or(ApiError::InvalidCursor)?;
        uuid::Uuid::parse_str(id).map_err(|_| ApiError::InvalidCursor)?;
        Ok(id.to_owned())
    }

    /// Cursor of a ranked customer list: the last customer's rank key (exactly, as its
    /// bits) and golden id.
    pub(crate) fn ranked_cursor(key: f64, id: &str) -> Cursor {
        Cursor(format!("rk:{:016x}:{id}", key.to_bits()))
    }

    pub(crate) fn parse_ranked_cursor(&self, cursor: &str) -> Result<(f64, String), ApiError> {
        let text = self.open_cursor(cursor)?;
        let rest = text.strip_prefix("rk:").ok_or(ApiError::InvalidCursor)?;
        let (bits, id) = rest.split_once(':').ok_or(ApiError::InvalidCursor)?;
        let key = u64::from_str_radix(bits, 16).map(f64::from_bits).map_err(|_| ApiError::InvalidCursor)?;
        uuid::Uuid::parse_str(id).map_err(|_| ApiError::InvalidCursor)?;
        if !key.is_finite() {
            return Err(ApiError::InvalidCursor);
        }
        Ok((key, id.to_owned()))
    }

    /// Cursor of a partner's customer list: the CRM key the last customer was listed under.
    pub(crate) fn consent_cursor(crm_key: i64) -> Cursor {
        Cursor(format!("cc:{crm_key}"))
    }

    pub(crate) fn parse_consent_cursor(&self, cursor: &str) -> Result<i64, ApiError> {
        let text = self.open_cursor(cursor)?;
        text.strip_prefix("cc:").and_then(|k| k.parse().ok()).ok_or(ApiError::InvalidCursor)
    }

    /// Cursor of the audit log: the id of the last entry seen, and its customer (a read
    /// names several customers under one id).
    pub(crate) fn audit_cursor(id: i64, customer: &str) -> Cursor {
        Cursor(format!("au:{id}:{customer}"))
    }

    pub(crate) fn parse_audit_cursor(&self, cursor: &str) -> Result<Position, ApiError> {
        let text = self.open_cursor(cursor)?;
        let rest = text.strip_prefix("au:").ok_or(ApiError::InvalidCursor)?;
        let (id, customer) = match rest.split_once(':') {
            Some((id, customer)) => (id, Some(customer.to_owned())),
            None => (rest, None),
        };
        let id = id.parse().map_err(|_| ApiError::InvalidCursor)?;
        Ok(Position { id, customer })
    }

    /// Cursor of the alert inbox: the number of the last alert seen.
    pub(crate) fn alert_cursor(id: i64) -> Cursor {
        Cursor(format!("al:{id}"))
    }

    pub(crate) fn parse_alert_cursor(&self, cursor: &str) -> Result<i64, ApiError> {
        let text = self.open_cursor(cursor)?;
        text.strip_prefix("al:").and_then(|id| id.parse().ok()).ok_or(ApiError::InvalidCursor)
    }

    /// Cursor of a newest-first list: the time and id of the last row seen, tagged with
    /// the list it belongs to so a cursor of one list is refused by another.
    pub(crate) fn time_cursor(tag: &str, at: DateTime<Utc>, id: i64) -> Cursor {
        Cursor(format!("{tag}:{}:{id}", at.timestamp()))
    }

    pub(crate) fn parse_time_cursor(&self, tag: &str, cursor: &str) -> Result<(DateTime<Utc>, i64), ApiError> {
        let text = self.open_cursor(cursor)?;
        let mut parts = text.split(':');
        let (Some(t), Some(secs), Some(id), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(ApiError::InvalidCursor);
        };
        if t != tag {
            return Err(ApiError::InvalidCursor);
        }
        let secs: i64 = secs.parse().map_err(|_| ApiError::InvalidCursor)?;
        let id: i64 = id.parse().map_err(|_| ApiError::InvalidCursor)?;
        let at = DateTime::from_timestamp(secs, 0).ok_or(ApiError::InvalidCursor)?;
        Ok((at, id))
    }
}

fn read(path: &std::path::Path) -> Result<Vec<u8>, IdsKeyError> {
    let name = || path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| IdsKeyError::Unreadable(name(), e.to_string()))?;
    let trimmed = String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec();
    let secret = if trimmed.len() >= 32 { trimmed } else { bytes };
    if secret.len() < 32 {
        return Err(IdsKeyError::Short(name()));
    }
    Ok(secret)
}

/// Ids echoed in error messages are cut short: they are user input.
fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(secret: &str) -> Ids {
        Ids::from_secrets(&[secret.as_bytes().to_vec()])
    }

    #[test]
    fn ids_round_trip_are_stable_and_show_nothing() {
        let ids = keyed("a secret of at least thirty-two bytes");
        let golden = "01a24e99-d29c-72b2-8bed-69dfaba6b740";
        for (kind, key) in [(Kind::Customer, golden), (Kind::Order, "1000000101"), (Kind::Campaign, "key-7")] {
            let id = ids.global_id(kind, key);
            assert_eq!(ids.parse_global_id(&id).ok(), Some((kind, key.to_owned())));
            // The same object, the same id; nothing of its key in it, sealed or decoded.
            assert_eq!(ids.global_id(kind, key), id);
            let bytes = URL_SAFE_NO_PAD.decode(id.as_str()).unwrap_or_default();
            let shown = String::from_utf8_lossy(&bytes);
            assert!(!shown.contains(&kind.to_string()) && !shown.contains(key) && !id.contains(key), "{id:?}");
        }
        let order = ids.global_id(Kind::Order, "1000000101");
        assert!(ids.parse_id_of(Kind::Customer, &order).is_err());
        // Another deployment's key, padding, any changed character: refused alike.
        assert!(keyed("another secret, of thirty-two bytes!").parse_global_id(&order).is_err());
        assert!(ids.parse_global_id(&format!("{}=", order.as_str())).is_err());
        for at in 0..order.len() {
            let mut tampered: Vec<u8> = order.as_bytes().to_vec();
            tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap_or_default();
            assert!(ids.parse_global_id(&tampered).is_err(), "{tampered}");
        }
        for bad in ["", "!!", "bm9wZQ", &URL_SAFE_NO_PAD.encode("Order:1")] {
            assert!(ids.parse_global_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cursors_belong_to_one_list_and_are_not_ids() {
        let ids = keyed("a secret of at least thirty-two bytes");
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let c = ids.seal_cursor(&Ids::time_cursor("o", at, 42));
        assert_eq!(ids.parse_time_cursor("o", &c).ok(), Some((at, 42)));
        assert!(ids.parse_time_cursor("t", &c).is_err());
        assert!(ids.parse_customer_cursor(&c).is_err());
        assert!(ids.parse_global_id(&c).is_err());
        assert!(ids.parse_time_cursor("o", "garbage").is_err());
        let consent = ids.seal_cursor(&Ids::consent_cursor(100_004));
        assert!(!String::from_utf8_lossy(&URL_SAFE_NO_PAD.decode(&consent).unwrap_or_default()).contains("100004"));
        assert_eq!(ids.parse_consent_cursor(&consent).ok(), Some(100_004));
    }

    #[test]
    fn earlier_keys_are_still_read_and_new_ids_use_the_current_one() {
        let old = keyed("the key before the rotation, 32 bytes");
        let id = old.global_id(Kind::Order, "7");
        let rotated = Ids::from_secrets(&[
            b"the key after the rotation, 32 bytes!!".to_vec(),
            b"the key before the rotation, 32 bytes".to_vec(),
        ]);
        assert_eq!(rotated.parse_global_id(&id).ok(), Some((Kind::Order, "7".to_owned())));
        assert_ne!(rotated.global_id(Kind::Order, "7"), id);
    }
}
