//! The domain's one error: a value that breaks a rule, said in words fit for the caller.
//! The HTTP layer decides which status that is (400 for most, 422 where the seed says so).

/// `field` names what was wrong (a body field, a path segment, a setting), `message` says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}
