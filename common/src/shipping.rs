//! Shipping: the address an order goes to (a snapshot taken at placement) and the shipment
//! that carries it there (carrier and tracking, given when the order becomes `SHIPPED`).
//! Both are checked here: an address once, by [`Address`], which a place command carries; a
//! shipment by [`shipment`], against the move it comes with. Checks name each field at
//! fault, as `(field, message)` pairs.

mod address;
mod errors;
mod shipment;

pub use address::{
    Address, MAX_ADDRESS_LINE_CHARS, MAX_ADDRESS_NAME_CHARS, MAX_CITY_CHARS, MAX_PHONE_CHARS,
    MAX_POSTAL_CODE_CHARS, MAX_REGION_CHARS, ShippingAddress, country_code,
};
pub use errors::{FieldErrors, describe};
pub use shipment::{
    MAX_CARRIER_CHARS, MAX_TRACKING_NUMBER_CHARS, MAX_TRACKING_URL_CHARS, Shipment, shipment,
};
