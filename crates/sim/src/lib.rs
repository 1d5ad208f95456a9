//! Virtual devices at virtual pumps.
//!
//! Each [`VirtualDevice`] runs the firmware's own decision crate ([`pumppilot_controller`])
//! against a real PumpPilot server over HTTP: it polls, switches a virtual relay, follows a
//! [`Script`] of load shedding, not-ready spells, network cuts and card taps (or inputs set by
//! hand), and records a [`Timeline`]. Over MQTT ([`DeviceSpec::mqtt`]) it publishes its reports
//! and takes the commands the server pushes instead ([`mqtt`]). `pumppilot sim` prints those timelines; the end-to-end
//! tests and `pumppilot serve --demo` drive devices in-process.

pub mod api;
pub mod device;
pub mod fleet;
pub mod mqtt;
pub mod script;

pub use api::Api;
pub use device::{DeviceSpec, Happening, Line, MqttSpec, Timeline, UpdateStage, VirtualDevice};
pub use fleet::{Summary, http_client, provision, provision_devices, run_fleet};
pub use script::Script;
