//! Firmware images: what makes one trustworthy, shared by the signing tool, the server (which
//! refuses an unsigned upload) and the device (which never boots an image that fails a check).
//!
//! An image is described by its version (1 to [`MAX_VERSION_BYTES`] of letters, digits and
//! `.-+_`), its size, its SHA-256 and an Ed25519 signature over
//! `"PP-FW-1\n" version "\n" size "\n" sha256` (the digest's 32 raw bytes) made with the
//! publisher's private key. Only the public key is built into the firmware; the private key is
//! never in the repository (`pumppilot firmware keygen` writes it outside).

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// Longest version string.
pub const MAX_VERSION_BYTES: usize = 32;

/// The size of each of the ESP32-C3's two OTA slots (`firmware/partitions.csv`, 0x1E0000): no
/// image larger can be installed, so the server takes none larger.
pub const OTA_SLOT_BYTES: u32 = 0x1E_0000;

/// An image's signed description, as a device reads it (`json::decode_release`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release<'a> {
    pub version: &'a str,
    pub size: u32,
    pub sha256: [u8; 32],
    pub signature: [u8; 64],
}

/// Why an image (or its description) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageError {
    /// The version is empty, too long, or has a character other than letters, digits, `.-+_`.
    BadVersion,
    /// The public key is not an Ed25519 key.
    BadKey,
    /// The signature was not made with the private half of the key for this description.
    BadSignature,
    /// The image is not as long as its description says (or longer than the slot).
    WrongSize,
    /// The image's SHA-256 is not the one signed.
    WrongDigest,
}

impl core::fmt::Display for ImageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ImageError::BadVersion => "the version must be 1 to 32 of letters, digits and .-+_",
            ImageError::BadKey => "the public key is not an Ed25519 key",
            ImageError::BadSignature => "the signature does not check with the firmware key",
            ImageError::WrongSize => "the image is not the size it was signed with",
            ImageError::WrongDigest => "the image's SHA-256 is not the one signed",
        })
    }
}

/// True for a usable version string.
pub fn valid_version(version: &str) -> bool {
    !version.is_empty()
        && version.len() <= MAX_VERSION_BYTES
        && version.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_'))
}

/// The bytes the publisher signs for an image.
pub fn signed_message(version: &str, size: u32, sha256: &[u8; 32], buf: &mut [u8; 128]) -> usize {
    let mut digits = [0u8; 20];
    let size = crate::link::decimal(u64::from(size), &mut digits);
    let parts: [&[u8]; 6] = [b"PP-FW-1\n", version.as_bytes(), b"\n", size, b"\n", sha256];
    let mut at = 0;
    for part in parts {
        let end = (at + part.len()).min(buf.len());
        buf[at..end].copy_from_slice(&part[..end - at]);
        at = end;
    }
    at
}

/// Checks the signature of an image's description with the firmware's public key.
pub fn verify(
    public_key: &[u8; 32],
    version: &str,
    size: u32,
    sha256: &[u8; 32],
    signature: &[u8; 64],
) -> Result<(), ImageError> {
    if !valid_version(version) {
        return Err(ImageError::BadVersion);
    }
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| ImageError::BadKey)?;
    let mut buf = [0u8; 128];
    let len = signed_message(version, size, sha256, &mut buf);
    // `verify_strict` also refuses weak keys and malleable signatures.
    key.verify_strict(&buf[..len], &Signature::from_bytes(signature)).map_err(|_| ImageError::BadSignature)
}

/// SHA-256 of an image read in chunks, with its length.
#[derive(Clone, Default)]
pub struct ImageDigest {
    sha: Sha256,
    len: u64,
}

impl ImageDigest {
    pub fn new() -> Self {
        ImageDigest::default()
    }

    /// Adds the next chunk.
    pub fn update(&mut self, chunk: &[u8]) {
        self.sha.update(chunk);
        self.len += chunk.len() as u64;
    }

    /// Bytes seen so far.
    pub const fn len(&self) -> u64 {
        self.len
    }

    /// True before the first byte.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything seen.
    pub fn finish(self) -> [u8; 32] {
        self.sha.finalize().into()
    }
}

/// Checks a whole image read through `digest` against its signed description.
pub fn check_image(
    public_key: &[u8; 32],
    version: &str,
    size: u32,
    sha256: &[u8; 32],
    signature: &[u8; 64],
    digest: ImageDigest,
) -> Result<(), ImageError> {
    verify(public_key, version, size, sha256, signature)?;
    if digest.len() != u64::from(size) {
        return Err(ImageError::WrongSize);
    }
    if digest.finish() != *sha256 {
        return Err(ImageError::WrongDigest);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;

    use ed25519_dalek::{Signer as _, SigningKey};

    use super::*;

    fn sign(key: &SigningKey, version: &str, size: u32, sha256: &[u8; 32]) -> [u8; 64] {
        let mut buf = [0u8; 128];
        let len = signed_message(version, size, sha256, &mut buf);
        key.sign(&buf[..len]).to_bytes()
    }

    fn digest_of(image: &[u8]) -> ImageDigest {
        let mut digest = ImageDigest::new();
        for chunk in image.chunks(7) {
            digest.update(chunk);
        }
        digest
    }

    #[test]
    fn a_signed_image_checks_and_any_change_does_not() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let public = key.verifying_key().to_bytes();
        let image = [0xA5u8; 1000];
        let sha256: [u8; 32] = Sha256::digest(image).into();
        let signature = sign(&key, "1.4.0", 1000, &sha256);
        assert_eq!(check_image(&public, "1.4.0", 1000, &sha256, &signature, digest_of(&image)), Ok(()));
        // Another version, size or digest than signed.
        assert_eq!(verify(&public, "1.4.1", 1000, &sha256, &signature), Err(ImageError::BadSignature));
        assert_eq!(verify(&public, "1.4.0", 999, &sha256, &signature), Err(ImageError::BadSignature));
        let mut other = sha256;
        other[0] ^= 1;
        assert_eq!(verify(&public, "1.4.0", 1000, &other, &signature), Err(ImageError::BadSignature));
        // Signed by another key.
        let stranger = SigningKey::from_bytes(&[8u8; 32]);
        let forged = sign(&stranger, "1.4.0", 1000, &sha256);
        assert_eq!(verify(&public, "1.4.0", 1000, &sha256, &forged), Err(ImageError::BadSignature));
        // The image itself changed, cut short or grown.
        let mut changed = image;
        changed[500] ^= 0x10;
        assert_eq!(
            check_image(&public, "1.4.0", 1000, &sha256, &signature, digest_of(&changed)),
            Err(ImageError::WrongDigest)
        );
        assert_eq!(
            check_image(&public, "1.4.0", 1000, &sha256, &signature, digest_of(&image[..999])),
            Err(ImageError::WrongSize)
        );
        assert_eq!(verify(&public, "", 1000, &sha256, &signature), Err(ImageError::BadVersion));
        assert_eq!(verify(&public, "1.4 beta", 1000, &sha256, &signature), Err(ImageError::BadVersion));
    }

    #[test]
    fn the_signed_bytes_are_as_documented() {
        let mut buf = [0u8; 128];
        let len = signed_message("2.0.1+c3", 591_306, &[0xEE; 32], &mut buf);
        let mut expected = b"PP-FW-1\n2.0.1+c3\n591306\n".to_vec();
        expected.extend_from_slice(&[0xEE; 32]);
        assert_eq!(&buf[..len], expected.as_slice());
        assert!(valid_version(&"9".repeat(MAX_VERSION_BYTES)) && !valid_version(&"9".repeat(MAX_VERSION_BYTES + 1)));
    }
}
