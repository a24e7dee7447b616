//! Encryption of archives and journal segments in the age format (age-encryption.org/v1).
//!
//! Every encrypted archive, and every encrypted target's journal, has its own *data key*: an
//! X25519 identity generated for it. Parts and segments are age files encrypted to the data
//! key's public half, so writing needs no secret and costs one X25519 operation per file. The
//! data key itself is stored as an age file (`key.age` in an archive, `journal-key.age` in a
//! target) encrypted to what the administrator gave: age recipients (`age1…`) or a passphrase
//! (scrypt, about a second of work, paid once per archive instead of once per part). With the
//! `age` tool: `age -d -i me.key key.age > data.key`, then `age -d -i data.key PART`.

use crate::error::{BackupError, BackupResult};
use age::secrecy::{ExposeSecret, SecretString};
use age::x25519;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::Path;

/// The name of the wrapped data key inside an archive.
pub const ARCHIVE_KEY: &str = "key.age";
/// The name of a target's wrapped journal key.
pub const JOURNAL_KEY: &str = "journal-key.age";
/// What the manifest's `encryption` says for age-encrypted parts.
pub const AGE: &str = "age";

/// The keys an administrator gave: what to encrypt to, and what to decrypt with.
#[derive(Clone, Default)]
pub struct Keys {
    recipients: Vec<x25519::Recipient>,
    passphrase: Option<SecretString>,
    identities: Vec<x25519::Identity>,
    /// Data keys known without unwrapping (the writer of an archive verifying it).
    data_keys: Vec<x25519::Identity>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("recipients", &self.recipient_strings())
            .field("passphrase", &self.passphrase.as_ref().map(|_| "(set)"))
            .field("identities", &self.identities.len())
            .finish()
    }
}

/// How a data key is wrapped, recorded in the manifest or the target marker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The file holding the wrapped data key.
    pub file: String,
    /// BLAKE3 of that file, hex.
    pub blake3: String,
    /// The data key's public half (`age1…`): what parts and segments are encrypted to.
    pub data_recipient: String,
    /// `passphrase` or `recipients`.
    pub wrapped_for: String,
    /// The recipients the data key is wrapped to (empty for a passphrase).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
}

/// Encrypts to a data key (needs only its public half).
#[derive(Clone)]
pub struct SealTo(x25519::Recipient);

/// Decrypts with a data key.
#[derive(Clone)]
pub struct Unseal(x25519::Identity);

impl std::fmt::Debug for Unseal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Unseal({})", self.0.to_public())
    }
}

/// A freshly generated data key, wrapped for the administrator's keys.
pub struct NewKey {
    pub seal: SealTo,
    pub unseal: Unseal,
    pub info: KeyInfo,
    pub wrapped: Vec<u8>,
}

impl Keys {
    /// Encrypt to these age recipients (`age1…`, one per entry; blank entries and `#` comments
    /// are skipped, so the lines of a recipients file can be passed).
    pub fn add_recipients<'a>(
        &mut self,
        lines: impl IntoIterator<Item = &'a str>,
    ) -> BackupResult<()> {
        for line in lines {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let r = line.parse::<x25519::Recipient>().map_err(|e| {
                BackupError::Key(format!(
                    "{line:?} is not an age recipient ({e}); recipients look like age1…"
                ))
            })?;
            self.recipients.push(r);
        }
        Ok(())
    }

    /// Encrypt to, and decrypt with, a passphrase.
    pub fn set_passphrase(&mut self, passphrase: &str) -> BackupResult<()> {
        let passphrase = passphrase.trim_end_matches(['\n', '\r']);
        if passphrase.is_empty() {
            return Err(BackupError::Key("the backup passphrase is empty".into()));
        }
        self.passphrase = Some(SecretString::from(passphrase.to_string()));
        Ok(())
    }

    /// Decrypt with the X25519 identities (`AGE-SECRET-KEY-1…`) in an age identity file.
    pub fn add_identity_file(&mut self, path: &Path) -> BackupResult<()> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            BackupError::Key(format!("cannot read identity file {}: {e}", path.display()))
        })?;
        let before = self.identities.len();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id = line.parse::<x25519::Identity>().map_err(|e| {
                BackupError::Key(format!(
                    "{} line {}: not an age X25519 identity ({e}); identities look like AGE-SECRET-KEY-1…",
                    path.display(),
                    n + 1
                ))
            })?;
            self.identities.push(id);
        }
        if self.identities.len() == before {
            return Err(BackupError::Key(format!(
                "identity file {} holds no identity",
                path.display()
            )));
        }
        Ok(())
    }

    /// Knows a data key directly (its writer verifying what it just wrote).
    pub fn add_data_key(&mut self, key: &Unseal) {
        self.data_keys.push(key.0.clone());
    }

    /// Whether new archives and segments are encrypted.
    pub fn encrypts(&self) -> bool {
        self.passphrase.is_some() || !self.recipients.is_empty()
    }

    fn recipient_strings(&self) -> Vec<String> {
        let mut r: Vec<String> = self.recipients.iter().map(|r| r.to_string()).collect();
        r.sort();
        r.dedup();
        r
    }

    /// A new data key wrapped for these keys, or `None` when nothing is to be encrypted.
    /// Recipients and a passphrase together are refused (age keeps a passphrase alone).
    pub fn new_data_key(&self, file: &str) -> BackupResult<Option<NewKey>> {
        if !self.encrypts() {
            return Ok(None);
        }
        let identity = x25519::Identity::generate();
        let public = identity.to_public();
        let secret = identity.to_string();
        let (encryptor, wrapped_for) = match &self.passphrase {
            Some(_) if !self.recipients.is_empty() => {
                return Err(BackupError::Key(
                    "give either age recipients or a passphrase for backups, not both".into(),
                ))
            }
            Some(p) => (
                age::Encryptor::with_user_passphrase(p.clone()),
                "passphrase",
            ),
            None => (
                age::Encryptor::with_recipients(
                    self.recipients.iter().map(|r| r as &dyn age::Recipient),
                )
                .map_err(|e| BackupError::Key(format!("cannot encrypt to the recipients: {e}")))?,
                "recipients",
            ),
        };
        let mut wrapped = Vec::new();
        let write = || -> std::io::Result<Vec<u8>> {
            let mut w = encryptor.wrap_output(&mut wrapped)?;
            w.write_all(secret.expose_secret().as_bytes())?;
            w.write_all(b"\n")?;
            w.finish()?;
            Ok(wrapped)
        };
        let wrapped = write().map_err(|e| BackupError::Key(format!("cannot wrap a key: {e}")))?;
        let info = KeyInfo {
            file: file.to_string(),
            blake3: blake3::hash(&wrapped).to_hex().to_string(),
            data_recipient: public.to_string(),
            wrapped_for: wrapped_for.into(),
            recipients: if wrapped_for == "recipients" {
                self.recipient_strings()
            } else {
                Vec::new()
            },
        };
        Ok(Some(NewKey {
            seal: SealTo(public),
            unseal: Unseal(identity),
            info,
            wrapped,
        }))
    }

    /// Checks that these keys encrypt the way `info` says something was encrypted, so new
    /// files in one place (a target) are readable with the same keys as the old ones.
    pub fn same_as(&self, info: &KeyInfo) -> bool {
        match info.wrapped_for.as_str() {
            "passphrase" => self.passphrase.is_some() && self.recipients.is_empty(),
            _ => self.passphrase.is_none() && self.recipient_strings() == info.recipients,
        }
    }

    /// Unwraps the data key described by `info` from `wrapped`, checking its BLAKE3 first.
    /// `place` names the archive or target in errors.
    pub fn open(&self, info: &KeyInfo, wrapped: &[u8], place: &str) -> BackupResult<Unseal> {
        if let Some(k) = self
            .data_keys
            .iter()
            .find(|k| k.to_public().to_string() == info.data_recipient)
        {
            return Ok(Unseal(k.clone()));
        }
        if blake3::hash(wrapped).to_hex().as_str() != info.blake3 {
            return Err(BackupError::Corrupt {
                archive: place.to_string(),
                part: info.file.clone(),
                reason: "BLAKE3 does not match the manifest".into(),
            });
        }
        let for_whom = if info.wrapped_for == "passphrase" {
            "a passphrase".to_string()
        } else {
            format!("age recipients {}", info.recipients.join(", "))
        };
        let decryptor =
            age::Decryptor::new_buffered(wrapped).map_err(|e| BackupError::Corrupt {
                archive: place.to_string(),
                part: info.file.clone(),
                reason: format!("not an age file: {e}"),
            })?;
        let mut candidates: Vec<Box<dyn age::Identity>> = Vec::new();
        let refused = if decryptor.is_scrypt() {
            format!("the passphrase given does not open {place}")
        } else {
            format!("no identity given opens {place} (encrypted to {for_whom})")
        };
        if decryptor.is_scrypt() {
            let Some(p) = &self.passphrase else {
                return Err(BackupError::Key(format!(
                    "{place} is encrypted with a passphrase; give it (--passphrase-file or KONTOR_BACKUP_PASSPHRASE)"
                )));
            };
            candidates.push(Box::new(age::scrypt::Identity::new(p.clone())));
        } else {
            if self.identities.is_empty() {
                return Err(BackupError::Key(format!(
                    "{place} is encrypted to {for_whom}; give a matching identity file (--identity)"
                )));
            }
            for id in &self.identities {
                candidates.push(Box::new(id.clone()));
            }
        }
        let mut reader = decryptor
            .decrypt(candidates.iter().map(|c| c.as_ref()))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys
                | age::DecryptError::DecryptionFailed
                | age::DecryptError::KeyDecryptionFailed => BackupError::Key(refused),
                other => BackupError::Key(format!("cannot open the key of {place}: {other}")),
            })?;
        let mut text = String::new();
        reader
            .read_to_string(&mut text)
            .map_err(|e| BackupError::Corrupt {
                archive: place.to_string(),
                part: info.file.clone(),
                reason: format!("cannot decrypt: {e}"),
            })?;
        let identity =
            text.trim()
                .parse::<x25519::Identity>()
                .map_err(|e| BackupError::Corrupt {
                    archive: place.to_string(),
                    part: info.file.clone(),
                    reason: format!("does not hold a key: {e}"),
                })?;
        if identity.to_public().to_string() != info.data_recipient {
            return Err(BackupError::Corrupt {
                archive: place.to_string(),
                part: info.file.clone(),
                reason: "holds another key than the one the parts are encrypted to".into(),
            });
        }
        Ok(Unseal(identity))
    }
}

impl SealTo {
    /// Parses the public half recorded in a [`KeyInfo`].
    pub fn from_info(info: &KeyInfo) -> BackupResult<SealTo> {
        info.data_recipient
            .parse::<x25519::Recipient>()
            .map(SealTo)
            .map_err(|e| BackupError::Key(format!("the recorded data key is unusable: {e}")))
    }

    /// `plain` as an age file encrypted to the data key.
    pub fn seal(&self, plain: &[u8]) -> BackupResult<Vec<u8>> {
        let encryptor = age::Encryptor::with_recipients(std::iter::once(&self.0 as _))
            .map_err(|e| BackupError::Key(format!("cannot encrypt: {e}")))?;
        let mut out = Vec::with_capacity(plain.len() + 256);
        let write = || -> std::io::Result<Vec<u8>> {
            let mut w = encryptor.wrap_output(&mut out)?;
            w.write_all(plain)?;
            w.finish()?;
            Ok(out)
        };
        write().map_err(|e| BackupError::Io(format!("cannot encrypt: {e}")))
    }
}

impl Unseal {
    /// The plaintext of an age file encrypted to this data key; the reason when it is not one.
    pub fn open(&self, sealed: &[u8], limit: u64) -> Result<Vec<u8>, String> {
        let decryptor =
            age::Decryptor::new_buffered(sealed).map_err(|e| format!("not an age file: {e}"))?;
        let reader = decryptor
            .decrypt(std::iter::once(&self.0 as &dyn age::Identity))
            .map_err(|e| format!("cannot decrypt with the data key: {e}"))?;
        let mut out = Vec::with_capacity(sealed.len());
        reader
            .take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("cannot decrypt (damaged or truncated): {e}"))?;
        if out.len() as u64 > limit {
            return Err(format!("decrypts to more than {limit} bytes"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_for(id: &x25519::Identity) -> (Keys, Keys) {
        let mut writer = Keys::default();
        writer
            .add_recipients([id.to_public().to_string().as_str()])
            .unwrap();
        let mut reader = Keys::default();
        reader.identities.push(id.clone());
        (writer, reader)
    }

    #[test]
    fn a_part_sealed_to_a_data_key_opens_with_the_unwrapped_key_only() {
        let me = x25519::Identity::generate();
        let (writer, reader) = keys_for(&me);
        let key = writer.new_data_key(ARCHIVE_KEY).unwrap().unwrap();
        assert_eq!(key.info.wrapped_for, "recipients");
        let sealed = key.seal.seal(b"hello").unwrap();
        let unseal = reader.open(&key.info, &key.wrapped, "a.tar").unwrap();
        assert_eq!(unseal.open(&sealed, 100).unwrap(), b"hello");
        assert!(unseal.open(&sealed, 3).is_err(), "limit holds");

        let stranger = x25519::Identity::generate();
        let (_, wrong) = keys_for(&stranger);
        let err = wrong.open(&key.info, &key.wrapped, "a.tar").unwrap_err();
        assert!(
            matches!(err, BackupError::Key(ref m) if m.contains("no identity given opens a.tar")),
            "{err}"
        );
        let err = Keys::default()
            .open(&key.info, &key.wrapped, "a.tar")
            .unwrap_err();
        assert!(
            matches!(err, BackupError::Key(ref m) if m.contains("--identity")),
            "{err}"
        );

        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(unseal.open(&flipped, 100).is_err());
        let mut damaged = key.wrapped.clone();
        damaged[10] ^= 1;
        let err = reader.open(&key.info, &damaged, "a.tar").unwrap_err();
        assert!(matches!(err, BackupError::Corrupt { ref part, .. } if part == ARCHIVE_KEY));
    }

    #[test]
    fn recipients_are_checked_when_parsed_and_compared_as_a_set() {
        let mut keys = Keys::default();
        let err = keys.add_recipients(["age1nope"]).unwrap_err();
        assert!(matches!(err, BackupError::Key(_)));
        let a = x25519::Identity::generate().to_public().to_string();
        let b = x25519::Identity::generate().to_public().to_string();
        keys.add_recipients(["# comment", "", a.as_str(), b.as_str()])
            .unwrap();
        let key = keys.new_data_key(JOURNAL_KEY).unwrap().unwrap();
        let mut reversed = Keys::default();
        reversed.add_recipients([b.as_str(), a.as_str()]).unwrap();
        assert!(reversed.same_as(&key.info));
        let mut fewer = Keys::default();
        fewer.add_recipients([a.as_str()]).unwrap();
        assert!(!fewer.same_as(&key.info));
        keys.set_passphrase("x").unwrap();
        assert!(matches!(
            keys.new_data_key(ARCHIVE_KEY),
            Err(BackupError::Key(_))
        ));
        assert!(Keys::default().new_data_key(ARCHIVE_KEY).unwrap().is_none());
    }
}
