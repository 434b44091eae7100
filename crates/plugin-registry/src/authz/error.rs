//! Why the authorization chain refused an exchange.

use std::sync::Arc;

use http::StatusCode;

/// Why a request or its response was not authorized.
///
/// The text is Docker's where Docker defines one: `authorization denied by
/// plugin NAME: MSG` for a denial, `plugin NAME failed with error: ERR`
/// for a plugin that could not answer, `request body too large for
/// authorization plugin: size exceeds 4194304 bytes` for an oversized
/// body. Cheap to clone.
#[derive(Clone)]
pub struct AuthzError(Arc<AuthzErrorKind>);

/// What went wrong, for callers that need more than the predicates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthzErrorKind {
    /// A plugin answered `Allow: false`.
    #[error("authorization denied by plugin {plugin}: {msg}")]
    Denied {
        /// The plugin that denied.
        plugin: String,
        /// Its `Msg`.
        msg: String,
    },
    /// A plugin could not be found, activated or called, or its answer was
    /// not a verdict (a non-200 status, garbage, an `Err`, no answer in
    /// time).
    #[error("plugin {plugin} failed with error: {error}")]
    PluginFailed {
        /// The plugin that failed.
        plugin: String,
        /// What went wrong, as the registry or client reports it.
        error: String,
    },
    /// The request body is larger than the plugins may be shown (Docker's
    /// text; Docker answers it with 500).
    #[error("request body too large for authorization plugin: size exceeds {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The response body is larger than the plugins may be shown.
    #[error("response body too large for authorization plugin: size exceeds {limit} bytes")]
    ResponseTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The request's framing does not match its body (a lying or doubled
    /// `Content-Length`, a body without framing), or the body could not be
    /// read whole.
    #[error("request refused before authorization: {reason}")]
    Framing {
        /// What does not match.
        reason: String,
    },
    /// The inner service's response body failed while it was read for the
    /// plugins.
    #[error("response body could not be read for authorization: {reason}")]
    ResponseUnreadable {
        /// The body's error.
        reason: String,
    },
    /// A body the plugins must see was not handed to the chain.
    #[error("{what} body must be read whole before authorization (Content-Type is JSON)")]
    BodyNotRead {
        /// `request` or `response`.
        what: &'static str,
    },
}

impl AuthzError {
    pub(crate) fn denied(plugin: &str, msg: &str) -> AuthzError {
        AuthzErrorKind::Denied {
            plugin: plugin.to_owned(),
            msg: msg.to_owned(),
        }
        .into()
    }

    pub(crate) fn plugin_failed(plugin: &str, error: impl std::fmt::Display) -> AuthzError {
        AuthzErrorKind::PluginFailed {
            plugin: plugin.to_owned(),
            error: error.to_string(),
        }
        .into()
    }

    pub(crate) fn framing(reason: impl Into<String>) -> AuthzError {
        AuthzErrorKind::Framing {
            reason: reason.into(),
        }
        .into()
    }

    /// What went wrong.
    pub fn kind(&self) -> &AuthzErrorKind {
        &self.0
    }

    /// A plugin answered `Allow: false` (Docker's `authorizationError`).
    pub fn is_denied(&self) -> bool {
        matches!(*self.0, AuthzErrorKind::Denied { .. })
    }

    /// A plugin could not give a verdict (lookup, connection, status,
    /// decode, `Err` or timeout failure).
    pub fn is_plugin_failure(&self) -> bool {
        matches!(*self.0, AuthzErrorKind::PluginFailed { .. })
    }

    /// The exchange was refused by the body rules, before any plugin was
    /// asked about it (too large, lying framing, body not read).
    pub fn is_body_rule(&self) -> bool {
        matches!(
            *self.0,
            AuthzErrorKind::BodyTooLarge { .. }
                | AuthzErrorKind::ResponseTooLarge { .. }
                | AuthzErrorKind::Framing { .. }
                | AuthzErrorKind::BodyNotRead { .. }
                | AuthzErrorKind::ResponseUnreadable { .. }
        )
    }

    /// The plugin that denied or failed.
    pub fn plugin(&self) -> Option<&str> {
        match &*self.0 {
            AuthzErrorKind::Denied { plugin, .. } | AuthzErrorKind::PluginFailed { plugin, .. } => {
                Some(plugin)
            }
            _ => None,
        }
    }

    /// The denying plugin's `Msg`, or the failing plugin's error.
    pub fn message(&self) -> Option<&str> {
        match &*self.0 {
            AuthzErrorKind::Denied { msg, .. } => Some(msg),
            AuthzErrorKind::PluginFailed { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The status an HTTP adapter answers with, as Docker's API server
    /// does: 403 for a denial (Docker's error is `Forbidden`), 500 for a
    /// plugin failure or an oversized body (plain errors in Docker), 400
    /// for a request whose framing does not match its body.
    pub fn status(&self) -> StatusCode {
        match &*self.0 {
            AuthzErrorKind::Denied { .. } => StatusCode::FORBIDDEN,
            AuthzErrorKind::Framing { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body Docker's API server answers an error with:
    /// `{"message":"<text>"}` and a newline (Go's encoder, HTML not
    /// escaped), served as `application/json`.
    pub fn json_body(&self) -> String {
        #[derive(serde::Serialize)]
        struct ErrorResponse<'a> {
            message: &'a str,
        }
        let text = self.to_string();
        let json = serde_json::to_string(&ErrorResponse { message: &text })
            .unwrap_or_else(|_| String::from("{\"message\":\"\"}"));
        // Go's encoder escapes these two even with HTML escaping off.
        json.replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029")
            + "\n"
    }
}

impl From<AuthzErrorKind> for AuthzError {
    fn from(kind: AuthzErrorKind) -> Self {
        AuthzError(Arc::new(kind))
    }
}

impl std::fmt::Display for AuthzError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::fmt::Debug for AuthzError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl std::error::Error for AuthzError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_statuses_and_predicates_are_dockers() {
        // pkg/authorization: newAuthorizationError, "plugin %s failed with error: %s"
        let d = AuthzError::denied("opa", "no <b>deletes</b>");
        assert_eq!(
            d.to_string(),
            "authorization denied by plugin opa: no <b>deletes</b>"
        );
        assert!(d.is_denied() && !d.is_plugin_failure() && !d.is_body_rule());
        assert_eq!(
            (d.plugin(), d.message()),
            (Some("opa"), Some("no <b>deletes</b>"))
        );
        assert_eq!(d.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            d.json_body(),
            "{\"message\":\"authorization denied by plugin opa: no <b>deletes</b>\"}\n"
        );
        let f = AuthzError::plugin_failed("opa", "EOF");
        assert_eq!(f.to_string(), "plugin opa failed with error: EOF");
        assert!(f.is_plugin_failure() && !f.is_denied());
        assert_eq!(f.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let big: AuthzError = AuthzErrorKind::BodyTooLarge { limit: 4194304 }.into();
        assert_eq!(
            big.to_string(),
            "request body too large for authorization plugin: size exceeds 4194304 bytes"
        );
        assert!(big.is_body_rule() && big.plugin().is_none());
        assert_eq!(big.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(AuthzError::framing("x").status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            AuthzError::denied("p", "a\u{2028}b").json_body(),
            "{\"message\":\"authorization denied by plugin p: a\\u2028b\"}\n"
        );
    }
}
