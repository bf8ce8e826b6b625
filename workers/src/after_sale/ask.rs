//! What every after-sale step shares: who asks, and what a step comes to (made, refused, or
//! a failure).

use crate::announce::Stepped;
use crate::consumer::Failure;
use uuid::Uuid;

/// Why a step cannot be made as asked.
#[derive(Debug, Clone)]
pub struct Refused(pub String);

/// A step made (what to announce), or refused; `Err` for a failure to retry or dead-letter.
pub type Made = Result<Result<Stepped, Refused>, Failure>;

/// The step refused, and why.
pub(super) fn refused(why: String) -> Made {
    Ok(Err(Refused(why)))
}

/// Who asks for a step, under which request.
#[derive(Debug, Clone)]
pub struct Ask {
    pub order_id: Uuid,
    pub request_id: Uuid,
    pub actor: String,
    pub staff: bool,
}
