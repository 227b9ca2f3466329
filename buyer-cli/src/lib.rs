//! fog-cli: the `fog` command's library.
//!
//! - [`client`]: a buyer's client of a hub's API;
//! - [`run`]: `fog job run`, from quote to verified, settled output.

pub mod client;
pub mod run;
