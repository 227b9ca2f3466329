//! Image references for job specs: a tag is resolved to the digest its
//! registry serves now (the OCI distribution API, through oci-client), and the
//! spec pins that digest; a pinned reference or a local image id is taken as
//! it is.

use fog_protocol::ImageRef;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

/// Why an image reference could not be pinned.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image {image:?}: {reason}")]
    Invalid { image: String, reason: String },
    #[error(
        "image {image:?}: the registry {registry} did not resolve it to a digest ({reason}). Push it there first (`docker tag {image} {registry}/NAME:TAG && docker push {registry}/NAME:TAG`; on a `fog devnet` the registry is in `fog devnet status`), or pass an image already on the miners by its id (`docker image inspect --format '{{{{.Id}}}}' {image}`)"
    )]
    Unresolved {
        image: String,
        registry: String,
        reason: String,
    },
}

/// What a spec's `image` field will hold, and whether a tag was resolved for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pinned {
    pub image: ImageRef,
    /// The tag reference it was resolved from, if it was one.
    pub resolved_from: Option<String>,
}

/// Registries on this machine: spoken to over plain HTTP (as Docker does for
/// them), every other registry over HTTPS with verified certificates.
fn is_loopback(registry: &str) -> bool {
    let host = registry
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(registry, |(host, _)| host);
    matches!(host, "localhost" | "[::1]")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Pins `image`: `sha256:<id>` and `name[:tag]@sha256:<digest>` as they are;
/// `[registry/]name[:tag]` resolved to the digest its registry serves now.
pub async fn pin(image: &str) -> Result<Pinned, ImageError> {
    if image.starts_with("sha256:") || image.contains("@sha256:") {
        let parsed: ImageRef = image.parse().map_err(|e| ImageError::Invalid {
            image: image.to_owned(),
            reason: format!("{e}"),
        })?;
        return Ok(Pinned {
            image: parsed,
            resolved_from: None,
        });
    }
    let reference: Reference = image.parse().map_err(|e| ImageError::Invalid {
        image: image.to_owned(),
        reason: format!(
            "not an image reference ({e}); use [REGISTRY/]NAME[:TAG], NAME@sha256:DIGEST or sha256:ID"
        ),
    })?;
    let registry = reference.resolve_registry().to_owned();
    let protocol = if is_loopback(&registry) {
        ClientProtocol::Http
    } else {
        ClientProtocol::Https
    };
    let client = Client::new(ClientConfig {
        protocol,
        ..Default::default()
    });
    let digest = client
        .fetch_manifest_digest(&reference, &RegistryAuth::Anonymous)
        .await
        .map_err(|e| ImageError::Unresolved {
            image: image.to_owned(),
            registry: registry.clone(),
            reason: e.to_string(),
        })?;
    let tag = reference.tag().unwrap_or("latest");
    let pinned = format!(
        "{}/{}:{tag}@{digest}",
        reference.registry(),
        reference.repository()
    );
    let parsed: ImageRef = pinned.parse().map_err(|e| ImageError::Invalid {
        image: image.to_owned(),
        reason: format!("the registry answered digest {digest}, which does not pin: {e}"),
    })?;
    Ok(Pinned {
        image: parsed,
        resolved_from: Some(image.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_spoken_to_over_http() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("registry.example.com"));
        assert!(!is_loopback("docker.io"));
        assert!(!is_loopback("127.example.com:443"));
    }

    #[tokio::test]
    async fn pinned_references_and_ids_are_taken_as_they_are() {
        let id = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(pin(&id).await.unwrap().resolved_from, None);
        let pinned = format!("127.0.0.1:5000/a/b:v1@sha256:{}", "cd".repeat(32));
        assert_eq!(pin(&pinned).await.unwrap().image.to_string(), pinned);
        let err = pin("sha256:nothex").await.unwrap_err().to_string();
        assert!(err.contains("64"), "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_registry_says_how_to_fix_it() {
        // A port nothing listens on.
        let err = pin("127.0.0.1:9/nothing/here:v1")
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("did not resolve it to a digest"), "{err}");
        assert!(err.contains("docker push"), "{err}");
    }
}
