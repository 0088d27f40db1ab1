//! Port previews: public URLs that reach a port a program listens on inside the sandbox.
//!
//! [`Sandbox::get_preview_link`] gives the port's URL and an access token (needed unless the
//! sandbox is public; send it as the [`PREVIEW_TOKEN_HEADER`] header).
//! [`Sandbox::get_signed_preview_url`] gives a URL with the token embedded, valid for a limited
//! time, that works without any header.

use std::fmt;
use std::time::Duration;

use reqwest::Method;

use daytona_api::sandbox::{PortPreviewUrl, SignedPortPreviewUrl};

use crate::error::DaytonaError;
use crate::sandbox::Sandbox;
use crate::secret::Secret;
use crate::transport::{Call, join};

/// Header that carries a preview token.
pub const PREVIEW_TOKEN_HEADER: &str = "X-Daytona-Preview-Token";

/// A port's preview URL and the token that opens it.
#[derive(Clone, PartialEq, Eq)]
pub struct PreviewLink {
    /// The sandbox.
    pub sandbox_id: String,
    /// The port.
    pub port: u16,
    /// Preview URL (e.g. `https://3000-<id>.proxy.daytona.works`).
    pub url: String,
    /// Access token for a private sandbox; never printed.
    pub token: Secret,
}

impl fmt::Debug for PreviewLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreviewLink")
            .field("sandbox_id", &self.sandbox_id)
            .field("port", &self.port)
            .field("url", &self.url)
            .field("token", &self.token)
            .finish()
    }
}

impl PreviewLink {
    /// The header to send with requests to [`url`](Self::url): name and value.
    ///
    /// ```no_run
    /// # async fn f(sandbox: workspace_daytona::Sandbox) -> Result<(), Box<dyn std::error::Error>> {
    /// let link = sandbox.get_preview_link(8000).await?;
    /// let (name, value) = link.auth_header();
    /// let page = reqwest::Client::new().get(&link.url).header(name, value).send().await?;
    /// # Ok(()) }
    /// ```
    pub fn auth_header(&self) -> (&'static str, &str) {
        (PREVIEW_TOKEN_HEADER, self.token.expose())
    }
}

/// A self-authenticating preview URL that expires.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedPreviewUrl {
    /// The sandbox.
    pub sandbox_id: String,
    /// The port.
    pub port: u16,
    /// The signing token (also inside the URL); never printed.
    pub token: Secret,
    /// The URL. It grants access by itself, so `Debug` does not print it.
    pub url: String,
}

impl fmt::Debug for SignedPreviewUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedPreviewUrl")
            .field("sandbox_id", &self.sandbox_id)
            .field("port", &self.port)
            .field("token", &self.token)
            .field("url", &"[REDACTED]")
            .finish()
    }
}

fn check_port(port: u16) -> Result<(), DaytonaError> {
    if port == 0 {
        return Err(DaytonaError::invalid("port", "must be within 1..=65535"));
    }
    Ok(())
}

impl Sandbox {
    fn preview_call(
        &self,
        op: &'static str,
        method: Method,
        tail: &[&str],
    ) -> Result<Call, DaytonaError> {
        let mut segments = vec!["sandbox", self.id()];
        segments.extend_from_slice(tail);
        let transport = &self.process().tb.transport;
        let url = join(&transport.config().api_url, &segments)?;
        Ok(Call::new(op, method, url).sandbox(self.id()))
    }

    /// The preview URL of `port` and its access token
    /// (`GET /sandbox/{id}/ports/{port}/preview-url`).
    ///
    /// The URL exists whether or not anything listens on the port; requests to it fail (with a
    /// gateway error status) until something does.
    ///
    /// # Errors
    /// [`DaytonaError::InvalidArgument`] for port 0.
    pub async fn get_preview_link(&self, port: u16) -> Result<PreviewLink, DaytonaError> {
        check_port(port)?;
        let port_s = port.to_string();
        let call = self.preview_call(
            "sandbox.preview_link",
            Method::GET,
            &["ports", &port_s, "preview-url"],
        )?;
        let transport = &self.process().tb.transport;
        let dto: PortPreviewUrl = transport.call_json(&call).await?;
        Ok(PreviewLink {
            sandbox_id: dto.sandbox_id,
            port,
            url: dto.url,
            token: Secret::new(dto.token),
        })
    }

    /// A signed preview URL of `port`, valid for `expires_in` (whole seconds, rounded up; the
    /// server's default, 60 s, when `None`)
    /// (`GET /sandbox/{id}/ports/{port}/signed-preview-url?expiresInSeconds=`).
    ///
    /// # Errors
    /// [`DaytonaError::InvalidArgument`] for port 0 or a zero `expires_in`.
    pub async fn get_signed_preview_url(
        &self,
        port: u16,
        expires_in: Option<Duration>,
    ) -> Result<SignedPreviewUrl, DaytonaError> {
        check_port(port)?;
        let port_s = port.to_string();
        let mut call = self.preview_call(
            "sandbox.signed_preview_url",
            Method::GET,
            &["ports", &port_s, "signed-preview-url"],
        )?;
        if let Some(d) = expires_in {
            if d.is_zero() {
                return Err(DaytonaError::invalid(
                    "expires_in",
                    "must be positive; use None for the server's default",
                ));
            }
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            call.url
                .query_pairs_mut()
                .append_pair("expiresInSeconds", &secs.to_string());
        }
        let transport = &self.process().tb.transport;
        let dto: SignedPortPreviewUrl = transport.call_json(&call).await?;
        Ok(SignedPreviewUrl {
            sandbox_id: dto.sandbox_id,
            port: dto.port,
            token: Secret::new(dto.token),
            url: dto.url,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_tokens_and_signed_urls() {
        let link = PreviewLink {
            sandbox_id: "s".into(),
            port: 3000,
            url: "https://3000-s.example".into(),
            token: Secret::new("tok-123"),
        };
        let d = format!("{link:?}");
        assert!(d.contains("3000-s.example") && !d.contains("tok-123"));
        assert_eq!(link.auth_header(), (PREVIEW_TOKEN_HEADER, "tok-123"));
        let signed = SignedPreviewUrl {
            sandbox_id: "s".into(),
            port: 3000,
            token: Secret::new("sig-9"),
            url: "https://3000-sig-9.example".into(),
        };
        assert!(!format!("{signed:?}").contains("sig-9"));
        assert!(check_port(0).is_err());
    }
}
