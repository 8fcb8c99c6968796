//! The webhook relay's tables: the tenants' subscriptions, the gateway's own ingress per
//! upstream session, and the outbox of events and their deliveries.

pub mod deliveries;
pub mod health;
pub mod ingress;
pub mod outbox;
pub mod subscriptions;

use crate::domain::webhook_signing::Scheme;
use crate::domain::webhooks::{Backoff, DeliveryStatus};
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueRef};
use sqlx::{Decode, Postgres, Type};

/// Reads a text column that holds one of a domain enum's names (the table's CHECK keeps it to
/// those), so rows carry the enum and no caller parses the text again.
macro_rules! text_column {
    ($ty:ty) => {
        impl Type<Postgres> for $ty {
            fn type_info() -> PgTypeInfo {
                <&str as Type<Postgres>>::type_info()
            }

            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as Type<Postgres>>::compatible(ty)
            }
        }

        impl<'r> Decode<'r, Postgres> for $ty {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<&str as Decode<Postgres>>::decode(value)?.parse::<$ty>()?)
            }
        }
    };
}

text_column!(Backoff);
text_column!(DeliveryStatus);
text_column!(Scheme);
