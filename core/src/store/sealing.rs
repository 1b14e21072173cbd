//! Secrets at rest (issue 10 item 6): device secrets, pending secrets,
//! PSK keys and product secrets are sealed with AES-256-GCM under a key
//! the database does not hold, so a dump of the database alone logs no
//! one in.
//!
//! Keys live in a key file (mode 0600, one `KID HEX64` per line; the first
//! line is the key new values are sealed with, the others still open older
//! values: rotation is `secrets keygen` then `secrets seal`). A sealed
//! value is stored as `enc:v1:{kid}:{base64(nonce ‖ ciphertext)}` in the
//! same column as a plaintext one; its associated data names the row it
//! belongs to (`secret:dk&pk`, `psk:IDENTITY`, …), so a sealed value copied
//! into another row does not open.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};

use super::StoreError;

/// What every sealed value starts with.
pub const SEALED_PREFIX: &str = "enc:v1:";

/// Whether a stored value is sealed (else it is plaintext from before
/// sealing was turned on).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(SEALED_PREFIX)
}

/// The row a sealed value belongs to: its associated data.
#[derive(Debug, Clone, Copy)]
pub enum SealedField<'a> {
    /// A device's secret, by `{dk}&{pk}`.
    DeviceSecret(&'a str),
    /// A device's issued, not yet confirmed secret, by `{dk}&{pk}`.
    PendingSecret(&'a str),
    /// A PSK's key, by PSK identity.
    PskKey(&'a str),
    /// A product's secret, by product key.
    ProductSecret(&'a str),
}

impl SealedField<'_> {
    fn associated_data(self) -> String {
        match self {
            SealedField::DeviceSecret(key) => format!("secret:{key}"),
            SealedField::PendingSecret(key) => format!("pending:{key}"),
            SealedField::PskKey(identity) => format!("psk:{identity}"),
            SealedField::ProductSecret(pk) => format!("product:{pk}"),
        }
    }
}

/// The keys secrets are sealed and opened with. `Debug` shows key ids only.
pub struct SecretKeys {
    current: String,
    keys: HashMap<String, LessSafeKey>,
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&String> = self.keys.keys().collect();
        ids.sort();
        f.debug_struct("SecretKeys")
            .field("current", &self.current)
            .field("ids", &ids)
            .finish()
    }
}

/// Key sets compare by their key ids (the current one first): the key
/// material is not comparable, and a key id names one key.
impl PartialEq for SecretKeys {
    fn eq(&self, other: &Self) -> bool {
        self.current == other.current
            && self.keys.len() == other.keys.len()
            && self.keys.keys().all(|kid| other.keys.contains_key(kid))
    }
}

impl Eq for SecretKeys {}

fn invalid(path: &Path, why: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("secret key file {}: {why}", path.display()))
}

impl SecretKeys {
    /// Reads the key file at `path`, refusing one that others may read
    /// (like ssh: `chmod 600`), and any line that is not `KID HEX64`.
    pub fn load(path: &Path) -> Result<Self, StoreError> {
        use std::os::unix::fs::PermissionsExt as _;
        let meta = std::fs::metadata(path).map_err(|e| invalid(path, e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(invalid(
                path,
                format!(
                    "mode {:o} lets others read it: chmod 600 it (owned by the user that reads it)",
                    meta.permissions().mode() & 0o777
                ),
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|e| invalid(path, e))?;
        SecretKeys::parse(&text).map_err(|why| invalid(path, why))
    }

    /// Parses key file text: one `KID HEX64` per line, the first current.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut current = None;
        let mut keys = HashMap::new();
        for (number, line) in text.lines().enumerate().map(|(n, l)| (n + 1, l.trim())) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (kid, hex_key) = line
                .split_once(' ')
                .ok_or_else(|| format!("line {number}: expected `KID HEX64`"))?;
            crate::access_token::validate_kid(kid).map_err(|e| format!("line {number}: {e}"))?;
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(hex_key.trim(), &mut bytes)
                .map_err(|_| format!("line {number}: the key is not 64 hex digits"))?;
            let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| format!("line {number}: bad key"))?;
            if keys.insert(kid.to_owned(), LessSafeKey::new(key)).is_some() {
                return Err(format!("line {number}: key id `{kid}` appears twice"));
            }
            current.get_or_insert_with(|| kid.to_owned());
        }
        let current = current.ok_or("no key in it (devicegate secrets keygen makes one)")?;
        Ok(SecretKeys { current, keys })
    }

    /// A new key file line `KID HEX64` with 32 random bytes.
    pub fn new_key_line(kid: &str) -> Result<String, StoreError> {
        crate::access_token::validate_kid(kid).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| StoreError::Invalid("the operating system RNG failed".to_owned()))?;
        Ok(format!("{kid} {}", hex::encode(bytes)))
    }

    /// The id of the key new values are sealed with.
    pub fn current_kid(&self) -> &str {
        &self.current
    }

    /// Seals `plaintext` for `field` under the current key.
    pub fn seal(&self, field: SealedField<'_>, plaintext: &str) -> Result<String, StoreError> {
        let key = self
            .keys
            .get(&self.current)
            .ok_or_else(|| StoreError::Invalid("the current secret key is missing".to_owned()))?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| StoreError::Invalid("the operating system RNG failed".to_owned()))?;
        let mut sealed = plaintext.as_bytes().to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(field.associated_data().as_bytes()),
            &mut sealed,
        )
        .map_err(|_| StoreError::Invalid("sealing a secret failed".to_owned()))?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&sealed);
        Ok(format!(
            "{SEALED_PREFIX}{}:{}",
            self.current,
            STANDARD_NO_PAD.encode(blob)
        ))
    }

    /// Opens the sealed value `stored` of `field`, or says why it cannot.
    pub fn open(&self, field: SealedField<'_>, stored: &str) -> Result<String, OpenError> {
        let rest = stored.strip_prefix(SEALED_PREFIX).ok_or(OpenError::Plaintext)?;
        let (kid, body) = rest.split_once(':').ok_or(OpenError::Corrupt)?;
        let key = self
            .keys
            .get(kid)
            .ok_or_else(|| OpenError::UnknownKey(kid.to_owned()))?;
        let blob = STANDARD_NO_PAD.decode(body).map_err(|_| OpenError::Corrupt)?;
        if blob.len() < NONCE_LEN {
            return Err(OpenError::Corrupt);
        }
        let (nonce, sealed) = blob.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError::Corrupt)?;
        let mut sealed = sealed.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(field.associated_data().as_bytes()), &mut sealed)
            .map_err(|_| OpenError::Corrupt)?;
        String::from_utf8(plain.to_vec()).map_err(|_| OpenError::Corrupt)
    }

    /// Whether `stored` is sealed under the current key (nothing to do
    /// for it in a rotation).
    pub fn is_current(&self, stored: &str) -> bool {
        stored
            .strip_prefix(SEALED_PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(kid, _)| kid == self.current)
    }
}

/// `plaintext` as the database should hold it for `field`: sealed when
/// `keys` are configured, else as it is.
pub(super) fn seal(keys: Option<&SecretKeys>, field: SealedField<'_>, plaintext: &str) -> Result<String, StoreError> {
    match keys {
        Some(keys) => keys.seal(field, plaintext),
        None => Ok(plaintext.to_owned()),
    }
}

/// The secret a stored value of `field` holds, or none when it cannot be
/// used (logged, never with the value): sealed without the key to open
/// it, altered, or plaintext in a product whose secrets are sealed.
pub(super) fn open(
    keys: Option<&SecretKeys>,
    field: SealedField<'_>,
    stored: Option<String>,
    product_sealed: bool,
) -> Option<String> {
    let stored = stored?;
    let refused = |why: &dyn std::fmt::Display| {
        tracing::warn!(field = ?field, "a stored secret is not used: {why}");
        None
    };
    match (keys, is_sealed(&stored)) {
        (Some(keys), true) => keys.open(field, &stored).map_or_else(|e| refused(&e), Some),
        (None, true) => refused(
            &"it is sealed and no secret key file is configured (plugin_opt_secret_key_file, --secret-key-file)",
        ),
        (_, false) if product_sealed => refused(&"stored in plaintext in a product whose secrets are sealed"),
        (_, false) => Some(stored),
    }
}

/// Why a stored secret does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// It is plaintext.
    #[error("stored in plaintext")]
    Plaintext,
    /// Sealed under a key id the key file does not hold.
    #[error("sealed under key `{0}`, which the secret key file does not hold")]
    UnknownKey(String),
    /// Not a sealed value of this row (changed, copied from another row,
    /// or truncated).
    #[error("sealed value does not open: altered or copied from another row")]
    Corrupt,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> SecretKeys {
        SecretKeys::parse(text).unwrap()
    }

    #[test]
    fn sealed_values_open_only_in_their_own_row_and_with_their_key() {
        let k1 = SecretKeys::new_key_line("k1").unwrap();
        let k2 = SecretKeys::new_key_line("k2").unwrap();
        let old = keys(&k1);
        let sealed = old
            .seal(SealedField::DeviceSecret("dev&pk"), "S3cretDevice0001")
            .unwrap();
        assert!(is_sealed(&sealed) && !sealed.contains("S3cret"));
        assert_eq!(
            old.open(SealedField::DeviceSecret("dev&pk"), &sealed).unwrap(),
            "S3cretDevice0001"
        );
        assert_eq!(
            old.open(SealedField::DeviceSecret("other&pk"), &sealed),
            Err(OpenError::Corrupt)
        );
        assert_eq!(
            old.open(SealedField::PendingSecret("dev&pk"), &sealed),
            Err(OpenError::Corrupt)
        );
        assert_eq!(
            old.open(SealedField::DeviceSecret("dev&pk"), "plain"),
            Err(OpenError::Plaintext)
        );
        // Rotation: the new key is current, the old one still opens.
        let rotated = keys(&format!("{k2}\n{k1}\n"));
        assert_eq!(rotated.current_kid(), "k2");
        assert!(!rotated.is_current(&sealed));
        assert_eq!(
            rotated.open(SealedField::DeviceSecret("dev&pk"), &sealed).unwrap(),
            "S3cretDevice0001"
        );
        let only_new = keys(&k2);
        assert_eq!(
            only_new.open(SealedField::DeviceSecret("dev&pk"), &sealed),
            Err(OpenError::UnknownKey("k1".into()))
        );
        let mut tampered = sealed.clone();
        tampered.pop();
        assert!(old.open(SealedField::DeviceSecret("dev&pk"), &tampered).is_err());
    }

    #[test]
    fn bad_key_files_are_refused_with_the_line() {
        assert!(SecretKeys::parse("").unwrap_err().contains("no key"));
        assert!(SecretKeys::parse("k1 abc").unwrap_err().contains("line 1"));
        assert!(SecretKeys::parse("k1\n").unwrap_err().contains("KID HEX64"));
        let line = SecretKeys::new_key_line("k1").unwrap();
        assert!(
            SecretKeys::parse(&format!("{line}\n{line}"))
                .unwrap_err()
                .contains("twice")
        );
        assert!(format!("{:?}", keys(&line)).contains("k1"));
        assert!(!format!("{:?}", keys(&line)).contains(line.split_once(' ').unwrap().1));
    }
}
