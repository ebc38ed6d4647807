//! `ferry_mirror`: the resource, its model, the pure building of the run's spec, polling the
//! run's status, and the launchers that place its workers.

pub mod launcher;
pub mod model;
pub mod poll;
pub mod resource;
pub mod spec;
