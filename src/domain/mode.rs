//! A key's mode, and the mode of everything made with it: `live` calls reach the hosted API
//! and spend the month; `test` calls are served by the in-process simulator and spend
//! nothing. Sessions, webhooks and events of one mode are invisible to keys of the other.

use serde::{Deserialize, Serialize};

/// `live`: calls reach the hosted API and spend the month. `test`: calls are served by the
/// gateway's built-in simulator, spend nothing, and see only test sessions, webhooks and
/// events (a test key reads `wagw_test_...`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Live,
    Test,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Test => "test",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "live" => Some(Mode::Live),
            "test" => Some(Mode::Test),
            _ => None,
        }
    }

    pub fn is_test(self) -> bool {
        self == Mode::Test
    }
}

/// Test sessions a tenant may hold at once. They count against neither its `max_sessions`
/// nor the organisation's plan (they never reach the upstream); this bounds what a tenant's
/// CI keeps in each replica's simulator.
pub const TEST_MAX_SESSIONS: i32 = 10;
