"""The shim every emulator gets (kms_shim.py, apart from shims.py so that a plain emulator
starts without importing moto's CloudFormation, Lambda and events models): KMS `Sign` of a
digest, as AWS signs it."""

import base64
import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from moto.kms.exceptions import ValidationException
from moto.kms.responses import KmsResponse


def kms_digest_signing() -> None:
    """A shim: moto 5.2's KMS `Sign` ignores `MessageType` and always hashes the message, where
    AWS's Sign reference says "When the value is DIGEST, KMS skips the hashing step in the
    signing algorithm" and "the length of the Message value must match the length of hashed
    messages for the specified signing algorithm". The issuer signs digests (RS256 tokens of any
    length fit KMS's 4,096-byte Message), so this signs a DIGEST as AWS does, with the key moto
    made, and refuses a digest of the wrong length as AWS does."""
    if getattr(KmsResponse.sign, "digest_shim", False):
        return
    original = KmsResponse.sign

    def sign(self):
        if self._get_param("MessageType") != "DIGEST":
            return original(self)
        key = self.kms_backend.describe_key(self._get_param("KeyId"))
        algorithm, digest = self._get_param("SigningAlgorithm"), self._get_param("Message")
        if key.key_usage != "SIGN_VERIFY" or algorithm not in (key.signing_algorithms or []):
            raise ValidationException(f"SigningAlgorithm {algorithm} is not one of {key.signing_algorithms}")
        h = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[algorithm[-3:]]
        if len(digest) != h.digest_size:
            raise ValidationException(f"Digest is invalid length for algorithm {algorithm}.")
        private = key.private_key.private_key
        if algorithm.startswith("RSASSA_PKCS1_V1_5"):
            signature = private.sign(digest, padding.PKCS1v15(), Prehashed(h))
        elif algorithm.startswith("RSASSA_PSS"):
            pss = padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.DIGEST_LENGTH)
            signature = private.sign(digest, pss, Prehashed(h))
        else:
            signature = private.sign(digest, ec.ECDSA(Prehashed(h)))
        return json.dumps({"KeyId": key.arn, "Signature": base64.b64encode(signature).decode(),
                           "SigningAlgorithm": algorithm})

    sign.digest_shim = True
    KmsResponse.sign = sign
