//! The token issuer's signing keys in AWS KMS: RS256 signatures made by KMS `Sign` on an RSA
//! key (`RSA_2048` or larger, `RSASSA_PKCS1_V1_5_SHA_256`; its private part never leaves KMS)
//! and the public keys the issuer publishes as a JWKS.
//!
//! RSA because API Gateway's HTTP API JWT authorizer verifies nothing else ("Control access to
//! HTTP APIs with JWT authorizers in API Gateway", step 3: "Check the token's algorithm and
//! signature by using the public key that is fetched from the issuer's jwks_uri. Currently,
//! only RSA-based algorithms are supported."). The caller hashes the signing input and KMS
//! signs the digest (`MessageType: DIGEST`): KMS takes at most 4,096 bytes of `Message`, a
//! digest is always 32, so no token is ever too long to sign. KMS gives the public key as DER
//! (X.509 SubjectPublicKeyInfo); JOSE wants the modulus and exponent (RFC 7518 §6.3.1).

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use spki::der::Decode;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key service is unavailable: {0}")]
    Unavailable(String),
    #[error("the key service answered something unexpected: {0}")]
    Malformed(&'static str),
}

/// An RSA public key as JOSE writes it: modulus and public exponent, big-endian, unsigned,
/// without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublic {
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

/// The smallest modulus the issuer accepts from KMS (`RSA_2048`).
pub const MIN_RSA_BITS: usize = 2048;

/// KMS, for RS256 signing and public keys.
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

    /// The RSASSA-PKCS1-v1_5 signature (RS256) by key `key_id` of a message whose SHA-256 is
    /// `digest`.
    pub async fn sign_rs256(&self, key_id: &str, digest: &[u8; 32]) -> Result<Vec<u8>, KeyError> {
        let out = self
            .client
            .get()
            .sign()
            .key_id(key_id)
            .message(Blob::new(digest.as_slice()))
            .message_type(MessageType::Digest)
            .signing_algorithm(SigningAlgorithmSpec::RsassaPkcs1V15Sha256)
            .send()
            .await
            .map_err(|e| KeyError::Unavailable(aws_sdk_kms::error::DisplayErrorContext(e).to_string()))?;
        let signature = out.signature.ok_or(KeyError::Malformed("no signature"))?;
        if signature.as_ref().len() * 8 < MIN_RSA_BITS {
            return Err(KeyError::Malformed("an RSA signature shorter than 2048 bits"));
        }
        Ok(signature.into_inner())
    }

    /// The public part of RSA key `key_id`.
    pub async fn public_rsa(&self, key_id: &str) -> Result<RsaPublic, KeyError> {
        let out = self
            .client
            .get()
            .get_public_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(|e| KeyError::Unavailable(aws_sdk_kms::error::DisplayErrorContext(e).to_string()))?;
        let spki = out.public_key.ok_or(KeyError::Malformed("no public key"))?;
        rsa_from_spki(spki.as_ref()).ok_or(KeyError::Malformed("not an RSA public key of 2048 bits or more"))
    }
}

/// A client for a local emulator (moto): fixed region and dummy credentials.
pub fn emulator_client(endpoint: &str) -> aws_sdk_kms::Client {
    crate::sdk_client!(aws_sdk_kms, crate::aws::SdkParts::emulator(endpoint))
}

/// `rsaEncryption` (RFC 8017 A.1), the algorithm of every RSA SubjectPublicKeyInfo KMS gives.
const RSA_ENCRYPTION: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The modulus and exponent of an RSA SubjectPublicKeyInfo of at least [`MIN_RSA_BITS`].
pub fn rsa_from_spki(der: &[u8]) -> Option<RsaPublic> {
    let info = spki::SubjectPublicKeyInfoRef::from_der(der).ok()?;
    if info.algorithm.oid != RSA_ENCRYPTION {
        return None;
    }
    let key = pkcs1::RsaPublicKey::from_der(info.subject_public_key.as_bytes()?).ok()?;
    let (n, e) = (key.modulus.as_bytes(), key.public_exponent.as_bytes());
    (n.len() * 8 >= MIN_RSA_BITS && !e.is_empty()).then(|| RsaPublic { n: n.to_vec(), e: e.to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DER: SEQUENCE { SEQUENCE { rsaEncryption, NULL }, BIT STRING { SEQUENCE { n, e } } }.
    fn spki_of(n: &[u8], e: &[u8]) -> Vec<u8> {
        fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            match body.len() {
                len @ 0..=0x7f => out.push(len as u8),
                len @ 0x80..=0xff => out.extend([0x81, len as u8]),
                len => out.extend([0x82, (len >> 8) as u8, len as u8]),
            }
            out.extend(body);
            out
        }
        let int = |v: &[u8]| {
            let mut body = if v.first().is_some_and(|b| b & 0x80 != 0) { vec![0] } else { vec![] };
            body.extend(v);
            tlv(0x02, &body)
        };
        let key = tlv(0x30, &[int(n), int(e)].concat());
        let alg =
            tlv(0x30, &[vec![0x06, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01], vec![0x05, 0]].concat());
        let bits = tlv(0x03, &[vec![0], key].concat());
        tlv(0x30, &[alg, bits].concat())
    }

    #[test]
    fn an_rsa_key_gives_its_modulus_and_exponent_without_sign_bytes() {
        let n = [0xc3; 256];
        let key = rsa_from_spki(&spki_of(&n, &[1, 0, 1])).expect("an RSA 2048 key");
        assert_eq!(key.n, n.to_vec(), "the DER sign byte is not part of the modulus");
        assert_eq!(key.e, vec![1, 0, 1]);
    }

    #[test]
    fn short_keys_and_anything_else_are_refused() {
        assert_eq!(rsa_from_spki(&spki_of(&[0xc3; 128], &[1, 0, 1])), None, "RSA 1024 is too short");
        assert_eq!(rsa_from_spki(&[]), None);
        // An uncompressed P-256 key (id-ecPublicKey), as KMS gives for ECC_NIST_P256.
        let mut ec = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
            0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
        ];
        ec.extend([7; 64]);
        assert_eq!(rsa_from_spki(&ec), None, "an EC key is not published as RSA");
    }
}
