//! One module per command group.

pub mod agent;
pub mod ca;
pub mod cert;
pub mod device;
pub mod doctor;
pub mod documentation;
pub mod import;
pub mod principal;
pub mod product;
pub mod psk;
pub mod secrets;
pub mod serve;
pub mod sign;
pub mod status;
pub mod token;
