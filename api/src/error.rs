//! The error body of every non-2xx answer, and the validators' error.
//!
//! A 400 names the request field at fault (`field`, a path such as `filters.orders.where`),
//! so a form can put the message beside the right input without guessing from the text. A
//! 500 carries only a reference into the sink's log: the internal chain can name hosts and
//! databases that are not the caller's business.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `{"error": "...", "field": "..."}`: what went wrong, in one sentence that names the fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    /// The request field the error is about (a 400), as a path: `tables`, `filters.*.where`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Where in the field's text (a filter predicate that does not parse), 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<TextPosition>,
}

/// A 1-based position in a field's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TextPosition {
    pub line: usize,
    pub column: usize,
}

/// A request that breaks a rule: the field and a sentence naming the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}
