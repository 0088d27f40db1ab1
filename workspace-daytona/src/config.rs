//! Client configuration: credentials, endpoint, region, timeouts, retries.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use url::Url;

use crate::error::DaytonaError;
use crate::retry::RetryConfig;
use crate::secret::Secret;

/// The public Daytona API.
pub const DEFAULT_API_URL: &str = "https://app.daytona.io/api";

/// Deadline for one ordinary API call when the call has no timeout of its own.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// Deadline for opening a TCP (and TLS) connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Deadline for a whole upload or download, as the official SDKs use.
pub const DEFAULT_TRANSFER_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The environment variables [`DaytonaConfig::from_env`] reads.
pub const ENV_VARS: [&str; 6] = [
    "DAYTONA_API_KEY",
    "DAYTONA_JWT_TOKEN",
    "DAYTONA_ORGANIZATION_ID",
    "DAYTONA_API_URL",
    "DAYTONA_TARGET",
    "DAYTONA_EXTRA_CA_CERTS",
];

/// Root certificates trusted beside the public web PKI's (a private CA, an emulator's
/// generated one). Shown in `Debug` by count only.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct ExtraRoots(pub(crate) Vec<CertificateDer<'static>>);

impl fmt::Debug for ExtraRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} extra root certificate(s)", self.0.len())
    }
}

/// How the client authenticates. Both kinds travel as `Authorization: Bearer`; a JWT also needs
/// the organization, sent as `X-Daytona-Organization-ID`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// An organization-scoped API key.
    ApiKey(Secret),
    /// A user JWT and the organization to act in.
    Jwt {
        /// The token.
        token: Secret,
        /// The organization id.
        organization_id: String,
    },
}

impl Credentials {
    pub(crate) fn bearer(&self) -> &Secret {
        match self {
            Credentials::ApiKey(k) => k,
            Credentials::Jwt { token, .. } => token,
        }
    }

    pub(crate) fn organization_id(&self) -> Option<&str> {
        match self {
            Credentials::ApiKey(_) => None,
            Credentials::Jwt {
                organization_id, ..
            } => Some(organization_id),
        }
    }
}

/// Everything a [`crate::DaytonaClient`] needs. Build it with [`DaytonaConfig::with_api_key`],
/// [`DaytonaConfig::with_jwt`] or [`DaytonaConfig::from_env`], then adjust with the builder
/// methods.
///
/// ```
/// use std::time::Duration;
/// use workspace_daytona::DaytonaConfig;
/// let cfg = DaytonaConfig::with_api_key("dtn_123")
///     .api_url("http://127.0.0.1:3000/api").unwrap()
///     .target("eu")
///     .request_timeout(Some(Duration::from_secs(30)));
/// assert_eq!(cfg.api_url_str(), "http://127.0.0.1:3000/api");
/// assert!(!format!("{cfg:?}").contains("dtn_123"));
/// ```
#[derive(Debug, Clone)]
pub struct DaytonaConfig {
    pub(crate) credentials: Credentials,
    pub(crate) api_url: Url,
    pub(crate) target: Option<String>,
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) connect_timeout: Duration,
    pub(crate) retry: RetryConfig,
    pub(crate) extra_roots: ExtraRoots,
}

impl DaytonaConfig {
    /// Authenticate with an API key, against [`DEFAULT_API_URL`].
    pub fn with_api_key(api_key: impl Into<Secret>) -> Self {
        Self::new(Credentials::ApiKey(api_key.into()))
    }

    /// Authenticate with a JWT acting in `organization_id`, against [`DEFAULT_API_URL`].
    pub fn with_jwt(token: impl Into<Secret>, organization_id: impl Into<String>) -> Self {
        Self::new(Credentials::Jwt {
            token: token.into(),
            organization_id: organization_id.into(),
        })
    }

    fn new(credentials: Credentials) -> Self {
        DaytonaConfig {
            credentials,
            api_url: default_api_url(),
            target: None,
            request_timeout: Some(DEFAULT_REQUEST_TIMEOUT),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retry: RetryConfig::default(),
            extra_roots: ExtraRoots::default(),
        }
    }

    /// Reads `DAYTONA_API_KEY`, or `DAYTONA_JWT_TOKEN` with `DAYTONA_ORGANIZATION_ID`, plus the
    /// optional `DAYTONA_API_URL`, `DAYTONA_TARGET` and `DAYTONA_EXTRA_CA_CERTS` (a PEM file of
    /// extra root certificates, see [`add_root_certificates_file`](Self::add_root_certificates_file)).
    /// An API key wins when both are set, as in the official SDKs. Empty variables count as unset.
    ///
    /// # Errors
    /// [`DaytonaError::MissingCredentials`] naming the variables when neither credential is set,
    /// [`DaytonaError::InvalidConfig`] when a JWT lacks its organization, the URL is invalid, or
    /// the CA file cannot be read or holds no usable certificate.
    pub fn from_env() -> Result<Self, DaytonaError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any lookup function (tests, config files).
    ///
    /// ```
    /// use workspace_daytona::{DaytonaConfig, DaytonaError};
    /// let err = DaytonaConfig::from_lookup(|_| None).unwrap_err();
    /// assert!(matches!(err, DaytonaError::MissingCredentials { .. }));
    /// assert!(err.to_string().contains("DAYTONA_API_KEY"));
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, DaytonaError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut cfg = if let Some(key) = get("DAYTONA_API_KEY") {
            Self::with_api_key(key)
        } else if let Some(token) = get("DAYTONA_JWT_TOKEN") {
            let org =
                get("DAYTONA_ORGANIZATION_ID").ok_or_else(|| DaytonaError::InvalidConfig {
                    field: "DAYTONA_ORGANIZATION_ID".into(),
                    reason: "DAYTONA_JWT_TOKEN is set, and a JWT needs an organization id".into(),
                })?;
            Self::with_jwt(token, org)
        } else {
            return Err(DaytonaError::MissingCredentials {
                variables: "DAYTONA_API_KEY, or DAYTONA_JWT_TOKEN with DAYTONA_ORGANIZATION_ID",
            });
        };
        if let Some(url) = get("DAYTONA_API_URL") {
            cfg = cfg.api_url(&url).map_err(|e| match e {
                DaytonaError::InvalidConfig { reason, .. } => DaytonaError::InvalidConfig {
                    field: "DAYTONA_API_URL".into(),
                    reason,
                },
                other => other,
            })?;
        }
        if let Some(target) = get("DAYTONA_TARGET") {
            cfg = cfg.target(target);
        }
        cfg.extra_roots_from_lookup(lookup)
    }

    /// Sets the API base URL, e.g. `https://app.daytona.io/api` or an emulator's
    /// `http://127.0.0.1:PORT/api`. A trailing slash is ignored.
    ///
    /// # Errors
    /// [`DaytonaError::InvalidConfig`] when it does not parse or is not `http`/`https`.
    pub fn api_url(mut self, url: &str) -> Result<Self, DaytonaError> {
        self.api_url = parse_base_url(url).map_err(|reason| DaytonaError::InvalidConfig {
            field: "api_url".into(),
            reason,
        })?;
        Ok(self)
    }

    /// The region new sandboxes are created in (`us`, `eu`, …); unset means the organization's
    /// default.
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Deadline of one API call that has no timeout of its own; `None` means none.
    /// Default [`DEFAULT_REQUEST_TIMEOUT`].
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Deadline for establishing a connection. Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Also trusts the root certificates in `pem` (one or more `CERTIFICATE` blocks), beside the
    /// public web PKI's, for HTTPS and WSS alike: a private CA, or an emulator's generated one.
    ///
    /// ```
    /// use workspace_daytona::{DaytonaConfig, DaytonaError};
    /// let err = DaytonaConfig::with_api_key("k")
    ///     .add_root_certificates_pem(b"not a certificate")
    ///     .unwrap_err();
    /// assert!(matches!(err, DaytonaError::InvalidConfig { .. }));
    /// ```
    ///
    /// # Errors
    /// [`DaytonaError::InvalidConfig`] (field `extra_ca`) when `pem` holds no certificate or one
    /// that cannot be a trust anchor.
    pub fn add_root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, DaytonaError> {
        let invalid = |reason: String| DaytonaError::InvalidConfig {
            field: "extra_ca".into(),
            reason,
        };
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("not PEM certificates: {e}")))?;
        if certs.is_empty() {
            return Err(invalid("no CERTIFICATE block found".into()));
        }
        let mut check = rustls::RootCertStore::empty();
        for cert in certs {
            check
                .add(cert.clone())
                .map_err(|e| invalid(format!("a certificate cannot be a trust anchor: {e}")))?;
            self.extra_roots.0.push(cert);
        }
        Ok(self)
    }

    /// [`add_root_certificates_pem`](Self::add_root_certificates_pem) with the content of the
    /// PEM file at `path`.
    ///
    /// # Errors
    /// [`DaytonaError::InvalidConfig`] (field `extra_ca`) naming the file when it cannot be read
    /// or holds no usable certificate.
    pub fn add_root_certificates_file(self, path: impl AsRef<Path>) -> Result<Self, DaytonaError> {
        let path = path.as_ref();
        let pem = std::fs::read(path).map_err(|e| DaytonaError::InvalidConfig {
            field: "extra_ca".into(),
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        self.add_root_certificates_pem(&pem).map_err(|e| match e {
            DaytonaError::InvalidConfig { field, reason } => DaytonaError::InvalidConfig {
                field,
                reason: format!("{}: {reason}", path.display()),
            },
            other => other,
        })
    }

    /// Also trusts the roots in the PEM file named by `DAYTONA_EXTRA_CA_CERTS`, when set (as
    /// [`from_env`](Self::from_env) does), for a config built another way.
    ///
    /// # Errors
    /// As [`add_root_certificates_file`](Self::add_root_certificates_file), the field named
    /// `DAYTONA_EXTRA_CA_CERTS`.
    pub fn extra_roots_from_env(self) -> Result<Self, DaytonaError> {
        self.extra_roots_from_lookup(|name| std::env::var(name).ok())
    }

    fn extra_roots_from_lookup(
        self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, DaytonaError> {
        let Some(path) = lookup("DAYTONA_EXTRA_CA_CERTS").filter(|v| !v.trim().is_empty()) else {
            return Ok(self);
        };
        self.add_root_certificates_file(&path).map_err(|e| match e {
            DaytonaError::InvalidConfig { reason, .. } => DaytonaError::InvalidConfig {
                field: "DAYTONA_EXTRA_CA_CERTS".into(),
                reason,
            },
            other => other,
        })
    }

    /// How many extra root certificates are trusted.
    pub fn extra_root_certificates(&self) -> usize {
        self.extra_roots.0.len()
    }

    /// Replaces the retry policy.
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// The credentials.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The API base URL, without a trailing slash.
    pub fn api_url_str(&self) -> &str {
        self.api_url.as_str().trim_end_matches('/')
    }

    /// The configured region, if any.
    pub fn target_name(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// The retry policy.
    pub fn retry_config(&self) -> &RetryConfig {
        &self.retry
    }

    pub(crate) fn validate(&self) -> Result<(), DaytonaError> {
        if self.credentials.bearer().is_empty() {
            return Err(DaytonaError::MissingCredentials {
                variables: "DAYTONA_API_KEY, or DAYTONA_JWT_TOKEN with DAYTONA_ORGANIZATION_ID",
            });
        }
        if let Some(org) = self.credentials.organization_id()
            && org.trim().is_empty()
        {
            return Err(DaytonaError::InvalidConfig {
                field: "organization_id".into(),
                reason: "a JWT needs a non-empty organization id".into(),
            });
        }
        Ok(())
    }
}

fn default_api_url() -> Url {
    // A compile-time constant, not external data: parsing it cannot fail.
    #[allow(clippy::expect_used)]
    Url::parse(DEFAULT_API_URL).expect("DEFAULT_API_URL is a valid URL")
}

/// Parses an `http`/`https` base URL and strips any trailing slash, query and fragment.
pub(crate) fn parse_base_url(url: &str) -> Result<Url, String> {
    let mut parsed = Url::parse(url.trim()).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{url}` must use http or https"));
    }
    if parsed.cannot_be_a_base() || parsed.host_str().is_none() {
        return Err(format!("`{url}` has no host"));
    }
    parsed.set_query(None);
    parsed.set_fragment(None);
    let path = parsed.path().trim_end_matches('/').to_string();
    parsed.set_path(&path);
    Ok(parsed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn api_key_from_env() {
        let cfg = DaytonaConfig::from_lookup(lookup(&[
            ("DAYTONA_API_KEY", "k1"),
            ("DAYTONA_API_URL", "http://localhost:9/api/"),
            ("DAYTONA_TARGET", "eu"),
        ]))
        .unwrap();
        assert_eq!(cfg.credentials, Credentials::ApiKey(Secret::new("k1")));
        assert_eq!(cfg.api_url_str(), "http://localhost:9/api");
        assert_eq!(cfg.target_name(), Some("eu"));
    }

    #[test]
    fn api_key_wins_over_jwt() {
        let cfg = DaytonaConfig::from_lookup(lookup(&[
            ("DAYTONA_API_KEY", "k1"),
            ("DAYTONA_JWT_TOKEN", "j"),
        ]))
        .unwrap();
        assert!(matches!(cfg.credentials, Credentials::ApiKey(_)));
        assert_eq!(cfg.api_url_str(), DEFAULT_API_URL);
    }

    #[test]
    fn jwt_needs_org() {
        let err = DaytonaConfig::from_lookup(lookup(&[("DAYTONA_JWT_TOKEN", "j")])).unwrap_err();
        assert!(err.to_string().contains("DAYTONA_ORGANIZATION_ID"), "{err}");
        let cfg = DaytonaConfig::from_lookup(lookup(&[
            ("DAYTONA_JWT_TOKEN", "j"),
            ("DAYTONA_ORGANIZATION_ID", "org"),
        ]))
        .unwrap();
        assert_eq!(cfg.credentials.organization_id(), Some("org"));
    }

    #[test]
    fn missing_credentials_names_variables() {
        let err = DaytonaConfig::from_lookup(lookup(&[("DAYTONA_API_KEY", "  ")])).unwrap_err();
        let msg = err.to_string();
        for v in [
            "DAYTONA_API_KEY",
            "DAYTONA_JWT_TOKEN",
            "DAYTONA_ORGANIZATION_ID",
        ] {
            assert!(msg.contains(v), "{msg}");
        }
    }

    #[test]
    fn bad_urls_are_typed_errors() {
        for bad in ["not a url", "ftp://x/api", "mailto:a@b", "http://"] {
            let err = DaytonaConfig::with_api_key("k").api_url(bad).unwrap_err();
            assert!(
                matches!(err, DaytonaError::InvalidConfig { ref field, .. } if field == "api_url"),
                "{bad}: {err:?}"
            );
        }
        let err = DaytonaConfig::from_lookup(lookup(&[
            ("DAYTONA_API_KEY", "k"),
            ("DAYTONA_API_URL", "nope"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("DAYTONA_API_URL"), "{err}");
    }

    #[test]
    fn extra_ca_file_errors_name_the_variable_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let junk = dir.path().join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        for path in [&missing, &junk, &empty] {
            let p = path.to_str().unwrap();
            let err = DaytonaConfig::from_lookup(lookup(&[
                ("DAYTONA_API_KEY", "k"),
                ("DAYTONA_EXTRA_CA_CERTS", p),
            ]))
            .unwrap_err();
            let DaytonaError::InvalidConfig { field, reason } = &err else {
                panic!("{err:?}");
            };
            assert_eq!(field, "DAYTONA_EXTRA_CA_CERTS");
            assert!(reason.contains(p), "{reason}");
        }
        let cfg = DaytonaConfig::from_lookup(lookup(&[("DAYTONA_API_KEY", "k")])).unwrap();
        assert_eq!(cfg.extra_root_certificates(), 0);
    }

    #[test]
    fn debug_redacts() {
        let cfg = DaytonaConfig::with_jwt("jwt-secret-value", "org-1");
        let dbg = format!("{cfg:?}");
        assert!(!dbg.contains("jwt-secret-value"));
        assert!(dbg.contains("org-1"));
    }
}
