//! The token issuer's signing keys in AWS KMS: ES256 signatures made by KMS `Sign` on an
//! `ECC_NIST_P256` key (its private part never leaves KMS) and the public keys the issuer
//! publishes as a JWKS. KMS speaks DER (X.509 SubjectPublicKeyInfo, ASN.1 ECDSA-Sig-Value);
//! JOSE wants the raw curve point and `r || s` (RFC 7518 §3.4), so both are converted here.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key service is unavailable: {0}")]
    Unavailable(String),
    #[error("the key service answered something unexpected: {0}")]
    Malformed(&'static str),
}

/// A P-256 public key as JOSE writes it: the point's coordinates, big-endian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct P256Public {
    pub x: [u8; 32],
    pub y: [u8; 32],
}

/// KMS, for ES256 signing and public keys.
pub struct KmsKeys {
    client: crate::aws::LazyClient<aws_sdk_kms::Client>,
}

impl KmsKeys {
    pub fn new(client: aws_sdk_kms::Client) -> Self {
        Self { client: crate::aws::LazyClient::ready(client) }
    }

    /// KMS from the Lambda environment (see [`crate::aws::SdkParts::from_env`]), built on the
    /// first call.
    pub fn from_env() -> Result<Self, String> {
        Ok(Self { client: crate::lazy_sdk_client!(aws_sdk_kms, crate::aws::SdkParts::from_env("KMS")?) })
    }

    /// KMS on a local emulator.
    pub fn emulator(endpoint: &str) -> Self {
        Self::new(emulator_client(endpoint))
    }

    /// The ES256 signature of `message` by key `key_id`, as JOSE's 64 bytes `r || s`.
    pub async fn sign_es256(&self, key_id: &str, message: &[u8]) -> Result<[u8; 64], KeyError> {
        let out = self
            .client
            .get()
            .sign()
            .key_id(key_id)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| KeyError::Unavailable(aws_sdk_kms::error::DisplayErrorContext(e).to_string()))?;
        let der = out.signature.ok_or(KeyError::Malformed("no signature"))?;
        der_signature_to_jose(der.as_ref()).ok_or(KeyError::Malformed("not a DER ECDSA P-256 signature"))
    }

    /// The public part of P-256 key `key_id`.
    pub async fn public_p256(&self, key_id: &str) -> Result<P256Public, KeyError> {
        let out = self
            .client
            .get()
            .get_public_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| KeyError::Unavailable(aws_sdk_kms::error::DisplayErrorContext(e).to_string()))?;
        let spki = out.public_key.ok_or(KeyError::Malformed("no public key"))?;
        p256_from_spki(spki.as_ref()).ok_or(KeyError::Malformed("not an uncompressed P-256 public key"))
    }
}

/// A client for a local emulator (moto): fixed region and dummy credentials.
pub fn emulator_client(endpoint: &str) -> aws_sdk_kms::Client {
    crate::sdk_client!(aws_sdk_kms, crate::aws::SdkParts::emulator(endpoint))
}

/// The DER header of an uncompressed P-256 SubjectPublicKeyInfo: SEQUENCE { SEQUENCE {
/// id-ecPublicKey, prime256v1 }, BIT STRING (no unused bits) 0x04 ... }; 65 bytes follow.
const P256_SPKI_PREFIX: [u8; 27] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
    0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
];

/// The point of a P-256 SubjectPublicKeyInfo (the only encoding KMS gives for the curve).
pub fn p256_from_spki(der: &[u8]) -> Option<P256Public> {
    let point = der.strip_prefix(&P256_SPKI_PREFIX[..])?;
    if point.len() != 64 {
        return None;
    }
    let (x, y) = point.split_at(32);
    Some(P256Public { x: x.try_into().ok()?, y: y.try_into().ok()? })
}

/// `SEQUENCE { INTEGER r, INTEGER s }` → `r || s`, each left-padded to 32 bytes.
pub fn der_signature_to_jose(der: &[u8]) -> Option<[u8; 64]> {
    let (tag, body, rest) = der_element(der)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let (rt, r, body) = der_element(body)?;
    let (st, s, body) = der_element(body)?;
    if rt != 0x02 || st != 0x02 || !body.is_empty() {
        return None;
    }
    let mut out = [0u8; 64];
    for (half, int) in out.chunks_exact_mut(32).zip([r, s]) {
        // A DER INTEGER is positive here, so a leading zero only marks the sign.
        let int = match int {
            [0, tail @ ..] => tail,
            all => all,
        };
        if int.len() > 32 {
            return None;
        }
        half.get_mut(32 - int.len()..)?.copy_from_slice(int);
    }
    Some(out)
}

/// One DER element: its tag, contents and what follows it (short and one-byte long lengths,
/// all an ECDSA P-256 signature uses).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let (len, rest) = match len {
        0..=0x7f => (usize::from(len), rest),
        0x81 => {
            let (&long, rest) = rest.split_first()?;
            (usize::from(long), rest)
        }
        _ => return None,
    };
    if rest.len() < len {
        return None;
    }
    let (body, after) = rest.split_at(len);
    Some((tag, body, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_der_signature_becomes_r_and_s_padded() {
        // r with a sign byte (33 bytes), s short (31 bytes).
        let mut der = vec![0x30, 0x00, 0x02, 33, 0x00];
        der.extend([0x80; 32]);
        der.extend([0x02, 31]);
        der.extend([0x11; 31]);
        der[1] = u8::try_from(der.len() - 2).expect("short");
        let jose = der_signature_to_jose(&der).expect("converted");
        assert_eq!(&jose[..32], &[0x80; 32]);
        assert_eq!(jose[32], 0);
        assert_eq!(&jose[33..], &[0x11; 31]);
    }

    #[test]
    fn anything_else_is_refused() {
        assert_eq!(der_signature_to_jose(&[]), None);
        assert_eq!(der_signature_to_jose(&[0x30, 0x02, 0x02, 0x00, 0x00]), None);
        let mut too_long = vec![0x30, 0x26, 0x02, 33];
        too_long.extend([0x7f; 33]);
        too_long.extend([0x02, 1, 1]);
        assert_eq!(der_signature_to_jose(&too_long), None);
        assert_eq!(p256_from_spki(&[0x30, 0x59]), None);
    }
}
