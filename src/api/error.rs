//! Errors as RFC 9457 problem details (`application/problem+json`), each naming the request
//! field at fault where there is one.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::interchange::RowError;
use crate::service::ServiceError;
use crate::stock::StockError;

/// Every way a request fails, and its status code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not well-formed (not JSON, truncated).
    #[error("{field}: {detail}")]
    Malformed { field: String, detail: String },
    /// A well-formed value that is not acceptable.
    #[error("{field}: {detail}")]
    Invalid { field: String, detail: String },
    #[error("missing or unknown bearer token")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("this path does not answer that method")]
    MethodNotAllowed,
    #[error("{detail}")]
    Conflict { field: String, detail: String },
    #[error("the body is larger than this endpoint accepts")]
    TooLarge,
    #[error("expected content type {expected}")]
    UnsupportedMediaType { expected: &'static str },
    /// An import with bad rows: every one of them, nothing written.
    #[error("{} bad row(s); nothing was imported", .0.len())]
    BadRows(Vec<RowError>),
    #[error("the database is not reachable")]
    Unavailable,
    #[error("internal error")]
    Internal(String),
}

/// The problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request field (body member, query or path parameter, or header) at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Row errors of an import, each `file:line: column: why`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemRow>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemRow {
    pub file: String,
    pub line: u64,
    pub column: String,
    pub why: String,
    pub text: String,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Malformed { .. } => StatusCode::BAD_REQUEST,
            ApiError::Invalid { .. } | ApiError::BadRows(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn slug(&self) -> &'static str {
        match self {
            ApiError::Malformed { .. } => "malformed-request",
            ApiError::Invalid { .. } => "invalid-field",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not-found",
            ApiError::MethodNotAllowed => "method-not-allowed",
            ApiError::Conflict { .. } => "conflict",
            ApiError::TooLarge => "payload-too-large",
            ApiError::UnsupportedMediaType { .. } => "unsupported-media-type",
            ApiError::BadRows(_) => "bad-rows",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            ApiError::Malformed { field, .. }
            | ApiError::Invalid { field, .. }
            | ApiError::Conflict { field, .. } => Some(field.clone()),
            ApiError::Unauthenticated => Some("authorization".into()),
            ApiError::UnsupportedMediaType { .. } => Some("content-type".into()),
            ApiError::TooLarge | ApiError::BadRows(_) => Some("body".into()),
            _ => None,
        }
    }

    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.to_owned(),
            detail: detail.into(),
        }
    }

    pub fn problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            // Internal details go to the log, not to the caller.
            ApiError::Internal(_) => "internal error; see the server log".to_owned(),
            other => other.to_string(),
        };
        let errors = match self {
            ApiError::BadRows(rows) => rows
                .iter()
                .map(|r| ProblemRow {
                    file: r.file.clone(),
                    line: r.line,
                    column: r.column.clone(),
                    why: r.why.clone(),
                    text: r.to_string(),
                })
                .collect(),
            _ => Vec::new(),
        };
        Problem {
            kind: format!("https://spareplan.dev/problems/{}", self.slug()),
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            status: status.as_u16(),
            detail,
            field: self.field(),
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(why) = &self {
            tracing::error!(error = %why, "request failed");
        }
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self, ApiError::Unauthenticated) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid { field, why } => ApiError::Invalid { field, detail: why },
            ServiceError::NotFound { what } => ApiError::NotFound(what),
            ServiceError::Conflict { field, why } => ApiError::Conflict { field, detail: why },
            ServiceError::Forbidden(why) => ApiError::Forbidden(why),
            ServiceError::Stock(StockError::WouldGoNegative { .. }) => ApiError::Conflict {
                field: "qty".into(),
                detail: e.to_string(),
            },
            ServiceError::Stock(StockError::KeyReused(_)) => ApiError::Conflict {
                field: "idempotency_key".into(),
                detail: e.to_string(),
            },
            ServiceError::Stock(StockError::ZeroQty) => {
                ApiError::invalid("qty", "must be positive")
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}
