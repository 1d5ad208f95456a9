//! `pumppilot firmware`: make the signing key, sign an image, publish it to a server.
//!
//! The private key stays in a file of its own (mode 0600, never in the repository); its public
//! half goes into the firmware build (`PUMPPILOT_FIRMWARE_PUBLIC_KEY`) and the server's settings
//! (same name), so neither a device nor the server takes an image signed by anyone else.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ed25519_dalek::{Signer as _, SigningKey};
use pumppilot_protocol::firmware;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

#[derive(clap::Subcommand)]
pub enum FirmwareCommand {
    /// Make a signing key: writes the private key to FILE (refuses to overwrite one) and prints the
    /// public key for PUMPPILOT_FIRMWARE_PUBLIC_KEY.
    Keygen {
        /// Where the private key goes (keep it off the repository and the server).
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign an image: prints the signature and writes it beside the image (IMAGE.sig).
    Sign {
        /// The private key file from `keygen`.
        #[arg(long)]
        key: PathBuf,
        /// The version the image reports (1 to 32 of letters, digits and .-+_).
        #[arg(long)]
        version: String,
        image: PathBuf,
    },
    /// Publish a signed image to a server as the master (password in PUMPPILOT_MASTER_PASSWORD).
    Publish {
        #[arg(long, env = "PUMPPILOT_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        #[arg(long, default_value = "master")]
        username: String,
        #[arg(long)]
        version: String,
        /// The signature (default: read from IMAGE.sig).
        #[arg(long)]
        signature: Option<String>,
        image: PathBuf,
    },
}

pub async fn run(command: FirmwareCommand) -> anyhow::Result<()> {
    match command {
        FirmwareCommand::Keygen { out } => println!("{}", keygen(&out)?),
        FirmwareCommand::Sign { key, version, image } => {
            let signature = sign(&key, &version, &std::fs::read(&image).with_context(|| read(&image))?)?;
            std::fs::write(sig_path(&image), format!("{signature}\n"))?;
            println!("{signature}");
        }
        FirmwareCommand::Publish { server, username, version, signature, image } => {
            let signature = match signature {
                Some(signature) => signature,
                None => std::fs::read_to_string(sig_path(&image)).with_context(|| read(&sig_path(&image)))?,
            };
            let password = std::env::var("PUMPPILOT_MASTER_PASSWORD")
                .context("publishing needs the master's password in PUMPPILOT_MASTER_PASSWORD")?;
            let bytes = std::fs::read(&image).with_context(|| read(&image))?;
            let api = pumppilot_sim::Api::new(reqwest::Client::new(), &server);
            let token = api.login(&username, &password).await?;
            if !firmware::valid_version(&version) {
                bail!("--version: 1 to 32 of letters, digits and .-+_");
            }
            // A version and a signature in hex need no escaping in a query.
            let url = format!(
                "{}/api/master/firmware?version={version}&signature={}",
                server.trim_end_matches('/'),
                signature.trim()
            );
            let answer = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/octet-stream")
                .body(bytes)
                .send()
                .await
                .with_context(|| format!("cannot reach {server}"))?;
            let status = answer.status();
            let body: serde_json::Value = answer.json().await.unwrap_or_default();
            if !status.is_success() {
                bail!("HTTP {status}: {}", body["error"]["message"]);
            }
            println!(
                "published {version} ({} bytes); roll it out with PUT /api/master/firmware/{version}/rollout",
                body["size"]
            );
        }
    }
    Ok(())
}

fn read(path: &Path) -> String {
    format!("reading {}", path.display())
}

fn sig_path(image: &Path) -> PathBuf {
    let mut name = image.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

/// Writes a new private key to `out` (0600; never over an existing file) and returns the public
/// key in hex.
pub fn keygen(out: &Path) -> anyhow::Result<String> {
    use std::io::Write as _;
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let key = SigningKey::from_bytes(&seed);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file =
        options.open(out).with_context(|| format!("cannot create {} (it must not exist yet)", out.display()))?;
    file.write_all(format!("{}\n", hex::encode(seed)).as_bytes())?;
    Ok(hex::encode(key.verifying_key().to_bytes()))
}

/// The signature (hex) of `image` as `version`, with the private key in `key`.
pub fn sign(key: &Path, version: &str, image: &[u8]) -> anyhow::Result<String> {
    if !firmware::valid_version(version) {
        bail!("--version: 1 to 32 of letters, digits and .-+_");
    }
    let text = std::fs::read_to_string(key).with_context(|| read(key))?;
    let seed = hex::decode(text.trim()).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
    let key = SigningKey::from_bytes(&seed.with_context(|| format!("{} is not a key from `keygen`", key.display()))?);
    let size = u32::try_from(image.len()).context("the image is larger than 4 GiB")?;
    let sha256: [u8; 32] = Sha256::digest(image).into();
    let mut buf = [0u8; 128];
    let len = firmware::signed_message(version, size, &sha256, &mut buf);
    Ok(hex::encode(key.sign(&buf[..len]).to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_signs_what_its_public_half_verifies_and_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("firmware.key");
        let public = keygen(&path).unwrap();
        assert!(keygen(&path).is_err(), "an existing key is never replaced");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let image = b"an image".repeat(100);
        let signature = sign(&path, "1.5.0", &image).unwrap();
        let public: [u8; 32] = hex::decode(public).unwrap().try_into().unwrap();
        let signature: [u8; 64] = hex::decode(signature).unwrap().try_into().unwrap();
        let sha256: [u8; 32] = Sha256::digest(&image).into();
        assert_eq!(firmware::verify(&public, "1.5.0", 800, &sha256, &signature), Ok(()));
        assert!(firmware::verify(&public, "1.5.1", 800, &sha256, &signature).is_err());
        assert!(sign(&path, "bad version", &image).is_err());
    }
}
